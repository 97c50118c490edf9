"""`python training/export.py --help`: the `danet-export` command (`danet_tf/cli/export.py`)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow starts

from danet_tf.cli.export import main  # noqa: E402

if __name__ == "__main__":
    main()
