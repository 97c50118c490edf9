"""Train DANet:
`python training/train.py --strategy mirrored [--preset NAME] [--set key=value ...]`.

With no arguments it trains the `quickstart` preset on the embedded synthetic
data and exports the best model under `saved_models/`.
"""

import argparse
import os
import subprocess
import sys

from danet_tf.cli import command
from danet_tf.config import load_config
from danet_tf.train.distribute import STRATEGIES

BACKENDS = ("tensorflow", "jax", "torch")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--strategy", default="auto", choices=STRATEGIES,
                        help="tf.distribute strategy (TensorFlow); on JAX auto/mirrored = "
                             "keras.distribution.DataParallel over all local devices")
    parser.add_argument("--backend", choices=BACKENDS,
                        help="Keras backend (default: KERAS_BACKEND, else tensorflow)")
    parser.add_argument("--preset", default="quickstart",
                        help="a preset in danet_tf/configs/ (quickstart, cityscapes, ...) "
                             "or a YAML path")
    parser.add_argument("--config", help="YAML file applied on top of the preset")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override, e.g. --set train.epochs=3")
    parser.add_argument("--model-dir", help="shortcut for --set train.model_dir=... "
                        "(default: runs/<train.name>)")
    intent = parser.add_mutually_exclusive_group()
    intent.add_argument("--resume", action="store_true",
                        help="continue the run in the model dir (an error if it has none)")
    intent.add_argument("--restart", action="store_true",
                        help="move an existing model dir aside and start afresh")
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument("--jit", action="store_true", help="XLA-compile the train step")
    return parser.parse_args(argv)


def use_backend(backend, argv):
    """Runs this command again in a child with `KERAS_BACKEND=backend` when
    Keras already runs another backend (it is chosen once, when Keras is
    first imported), and exits with the child's status."""
    import keras

    if backend is None or keras.backend.backend() == backend:
        return
    env = {**os.environ, "KERAS_BACKEND": backend}
    command = [sys.executable, "-m", "danet_tf.cli.train", *argv]
    sys.exit(subprocess.run(command, env=env).returncode)


@command
def main(argv=None):
    args = parse_args(argv)
    use_backend(args.backend, argv)
    overrides = list(args.overrides)
    if args.model_dir:
        overrides.append(f"train.model_dir={args.model_dir}")
    if args.mixed_precision:
        overrides.append("train.mixed_precision=true")
    if args.jit:
        overrides.append("train.jit=true")
    config = load_config(args.preset, args.config, overrides)

    from danet_tf.train.trainer import train

    mode = "resume" if args.resume else "restart" if args.restart else "auto"
    summary, _ = train(config, args.strategy, mode=mode)
    return summary


if __name__ == "__main__":
    main()
