"""`python training/convert_to_tfrecord.py --help`: the `danet-convert-to-tfrecord` command (`danet_tf/cli/convert_to_tfrecord.py`)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow starts

from danet_tf.cli.convert_to_tfrecord import main  # noqa: E402

if __name__ == "__main__":
    main()
