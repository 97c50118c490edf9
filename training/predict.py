"""`python training/predict.py --help`: the `danet-predict` command (`danet_tf/cli/predict.py`)."""

import _startup  # noqa: F401  (first: hides TensorFlow's start-up lines unless --debug)

from danet_tf.cli.predict import main

if __name__ == "__main__":
    main()
