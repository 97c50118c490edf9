"""`python training/visualize_attention.py --help`: the `danet-visualize-attention` command (`danet_tf/cli/visualize_attention.py`)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow starts

from danet_tf.cli.visualize_attention import main  # noqa: E402

if __name__ == "__main__":
    main()
