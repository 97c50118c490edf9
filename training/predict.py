"""`python training/predict.py --help`: the `danet-predict` command (`danet_tf/cli/predict.py`)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow starts

from danet_tf.cli.predict import main  # noqa: E402

if __name__ == "__main__":
    main()
