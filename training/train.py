"""`python training/train.py --help`: the `danet-train` command (`danet_tf/cli/train.py`)."""

import _startup  # noqa: F401  (first: hides TensorFlow's start-up lines unless --debug)

from danet_tf.cli.train import main

if __name__ == "__main__":
    main()
