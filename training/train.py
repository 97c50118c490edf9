"""Train DANet: `python training/train.py --strategy mirrored [--preset NAME] [--set key=value ...]`.

With no arguments it trains the `quickstart` preset on the embedded synthetic
data and exports the best model under `saved_models/`.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from danet_tf.config import load_config  # noqa: E402
from danet_tf.distribute import STRATEGIES  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--strategy", default="auto", choices=STRATEGIES)
    parser.add_argument("--preset", default="quickstart",
                        help="name of a YAML file in training/configs/ or a path")
    parser.add_argument("--config", help="YAML file applied on top of the preset")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override, e.g. --set train.epochs=3")
    parser.add_argument("--model-dir", help="shortcut for --set train.model_dir=...")
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument("--jit", action="store_true", help="XLA-compile the train step")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    overrides = list(args.overrides)
    if args.model_dir:
        overrides.append(f"train.model_dir={args.model_dir}")
    if args.mixed_precision:
        overrides.append("train.mixed_precision=true")
    if args.jit:
        overrides.append("train.jit=true")
    config = load_config(args.preset, args.config, overrides)

    from danet_tf.trainer import train

    summary, _ = train(config, args.strategy)
    return summary


if __name__ == "__main__":
    main()
