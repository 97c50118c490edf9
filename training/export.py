"""`python training/export.py --help`: the `danet-export` command (`danet_tf/cli/export.py`)."""

import os
import sys

if "--debug" not in sys.argv and os.environ.get("DANET_DEBUG", "") in ("", "0"):
    # Before TensorFlow starts: hide its C++ start-up lines (e.g. "failed call
    # to cuInit" on every machine without a GPU). --debug shows them.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from danet_tf.cli.export import main

if __name__ == "__main__":
    main()
