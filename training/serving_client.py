"""`python training/serving_client.py --help`: the `danet-serving-client` command.

Defined in `danet_tf/cli/serving_client.py`.
"""

import _startup  # noqa: F401  (first: hides TensorFlow's start-up lines unless --debug)

from danet_tf.cli.serving_client import main

if __name__ == "__main__":
    main()
