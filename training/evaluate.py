"""`python training/evaluate.py --help`: the `danet-evaluate` command.

Defined in `danet_tf/cli/evaluate.py`.
"""

import _startup  # noqa: F401  (first: hides TensorFlow's start-up lines unless --debug)

from danet_tf.cli.evaluate import main

if __name__ == "__main__":
    main()
