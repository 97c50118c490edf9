"""`python training/convert_weights.py --help`: the `danet-convert-weights` command.

Defined in `danet_tf/cli/convert_weights.py`.
"""

import _startup  # noqa: F401  (first: hides TensorFlow's start-up lines unless --debug)

from danet_tf.cli.convert_weights import main

if __name__ == "__main__":
    main()
