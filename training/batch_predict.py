"""`python training/batch_predict.py --help`: the `danet-batch-predict` command
(`danet_tf/cli/batch_predict.py`)."""

import _startup  # noqa: F401  (first: hides TensorFlow's start-up lines unless --debug)

from danet_tf.cli.batch_predict import main

if __name__ == "__main__":
    main()
