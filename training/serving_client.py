"""`python training/serving_client.py --help`: the `danet-serving-client` command (`danet_tf/cli/serving_client.py`)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow starts

from danet_tf.cli.serving_client import main  # noqa: E402

if __name__ == "__main__":
    main()
