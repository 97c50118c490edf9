"""`python training/export.py --help`: the `danet-export` command (`danet_tf/cli/export.py`)."""

import _startup  # noqa: F401  (first: hides TensorFlow's start-up lines unless --debug)

from danet_tf.cli.export import main

if __name__ == "__main__":
    main()
