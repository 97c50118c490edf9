"""`python training/visualize_attention.py --help`: the `danet-visualize-attention` command.

Defined in `danet_tf/cli/visualize_attention.py`.
"""

import _startup  # noqa: F401  (first: hides TensorFlow's start-up lines unless --debug)

from danet_tf.cli.visualize_attention import main

if __name__ == "__main__":
    main()
