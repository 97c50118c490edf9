"""`python training/convert_to_tfrecord.py --help`: the `danet-convert-to-tfrecord` command.

Defined in `danet_tf/cli/convert_to_tfrecord.py`.
"""

import _startup  # noqa: F401  (first: hides TensorFlow's start-up lines unless --debug)

from danet_tf.cli.convert_to_tfrecord import main

if __name__ == "__main__":
    main()
