"""Segment images: class-index PNG, colour PNG and overlay for each input.

    python training/predict.py IMAGES... \
        --model saved_models/danet_quickstart/danet_quickstart.keras \
        --out predictions/ [--dataset synthetic|cityscapes|ade20k|pascal_voc] \
        [--crop 512 --stride-rate 0.667] [--scales 0.75 1.0 1.25] [--flip]

    python training/predict.py street.jpg --model danet_r101-d8_4xb2-80k_cityscapes-769x769 \
        --out predictions/

--model takes a .keras file, a preset (a directory, or a catalogue name that is
downloaded and converted on first use), a SavedModel version directory or an
OpenVINO .xml. A converted mmseg model predicts with mmseg's test protocol.
"""

import argparse
import os
import sys

import numpy as np

from danet_tf.cli import command, debug_requested
from danet_tf.cli.options import (
    add_inference_args,
    class_map_dtype,
    make_segmenter,
    save_png,
)
from danet_tf.cli.schema import validate_config
from danet_tf.data.images import BadExampleError, read_rgb
from danet_tf.deploy import visualize
from danet_tf.deploy.loading import class_names_and_palette, resolve_model
from danet_tf.run_config import load_config_for_model


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("images", nargs="*")
    parser.add_argument("--out", help="output folder")
    parser.add_argument("--sample", metavar="PNG",
                        help="write a sample scene (an embedded synthetic image) to try the "
                             "commands on, and exit")
    parser.add_argument("--dataset", help="palette and class names: cityscapes, pascal_voc, "
                        "synthetic, ... (default: the run's config next to the model)")
    parser.add_argument("--alpha", type=float, default=0.5, help="overlay opacity")
    parser.add_argument("--untinted", type=int, nargs="*", metavar="CLASS",
                        help="class ids the overlay leaves untinted (default: classes named "
                             "background; the ignore label 255 never is)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="change the model's config, e.g. "
                        "--set 'eval.scale=[1024, 512]' (the mmseg protocol's test size)")
    add_inference_args(parser, model_required=False)
    return parser


@command
def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.sample:
        return write_sample(args.sample)
    if not (args.images and args.out and args.model):
        parser.error("give IMAGES, --out and --model (or --sample PNG)")

    args.model = resolve_model(args.model)
    config, _ = load_config_for_model(args.model, overrides=args.overrides)
    validate_config(config)
    segmenter, num_classes = make_segmenter(args, config)
    names, palette = class_names_and_palette(args.model, args.dataset, num_classes)
    os.makedirs(args.out, exist_ok=True)
    failed = [reason for path in args.images
              if (reason := segment_file(path, segmenter, num_classes, palette, names, args))]
    if failed:
        print(f"{len(failed)} of {len(args.images)} files could not be segmented:",
              file=sys.stderr)
        for reason in failed:
            print(f"  {reason}", file=sys.stderr)
        sys.exit(2)


def segment_file(path, segmenter, num_classes, palette, names, args):
    """Writes one image's pictures; returns why it could not be read, or `None`."""
    try:
        image = read_rgb(path)
    except BadExampleError as error:
        if debug_requested([]):
            raise
        return str(error)
    stem = os.path.join(args.out, os.path.splitext(os.path.basename(path))[0])
    write_pictures(image, segmenter.predict(image), stem, num_classes, palette, names, args)
    print(f"{path}: {stem}_{{classes,color,overlay}}.png")
    return None


def write_pictures(image, classes, stem, num_classes, palette, names, args):
    """`<stem>_classes.png` (class ids), `_color.png` and `_overlay.png` (with legends)."""
    save_png(classes.astype(class_map_dtype(num_classes)), f"{stem}_classes.png")
    save_png(visualize.with_legend(palette[classes], palette, names, classes),
             f"{stem}_color.png")
    blend = visualize.overlay(image, classes, palette, names, args.alpha, untinted=args.untinted)
    save_png(visualize.with_legend(blend, palette, names, classes), f"{stem}_overlay.png")


def write_sample(path):
    """Writes one embedded synthetic scene (a val scene of the quick start)."""
    from danet_tf.data.synthetic import make_scene

    image, _ = make_scene(np.random.default_rng(2026), 256, 256)
    save_png(np.asarray(image, np.uint8), path)
    print(f"wrote a sample scene to {path}")
    return path


if __name__ == "__main__":
    main()
