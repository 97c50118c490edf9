"""`python training/train.py --help`: the `danet-train` command (`danet_tf/cli/train.py`)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow starts

from danet_tf.cli.train import main  # noqa: E402

if __name__ == "__main__":
    main()
