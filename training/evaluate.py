"""`python training/evaluate.py --help`: the `danet-evaluate` command (`danet_tf/cli/evaluate.py`)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow starts

from danet_tf.cli.evaluate import main  # noqa: E402

if __name__ == "__main__":
    main()
