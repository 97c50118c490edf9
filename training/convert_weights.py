"""`python training/convert_weights.py --help`: the `danet-convert-weights` command (`danet_tf/cli/convert_weights.py`)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow starts

from danet_tf.cli.convert_weights import main  # noqa: E402

if __name__ == "__main__":
    main()
