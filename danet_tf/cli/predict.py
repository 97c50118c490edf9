"""Segment images: class-index PNG, colour PNG and overlay for each input.

    python training/predict.py IMAGES... \
        --model saved_models/danet_quickstart/danet_quickstart.keras \
        --out predictions/ [--dataset synthetic|cityscapes|ade20k|pascal_voc] \
        [--crop 512 --stride-rate 0.667] [--scales 0.75 1.0 1.25] [--flip]

--model takes a .keras file, a SavedModel version directory or an OpenVINO .xml.
"""

import argparse
import os

import numpy as np
from PIL import Image

from danet_tf.cli import command
from danet_tf.config import load_config_for_model
from danet_tf.data.catalog import class_names_for, palette_for
from danet_tf.data.images import read_rgb
from danet_tf.deploy import visualize
from danet_tf.deploy.inference import Segmenter
from danet_tf.deploy.loading import load_logits_fn
from danet_tf.files import atomic_path


def add_inference_args(parser, model_required=True):
    parser.add_argument("--model", required=model_required,
                        help=".keras file, SavedModel directory or OpenVINO .xml")
    parser.add_argument("--crop", type=int, help="sliding-window size (default: whole image)")
    parser.add_argument("--stride-rate", type=float, default=2 / 3)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0])
    parser.add_argument("--base-size", type=int, help="long side at scale 1.0")
    parser.add_argument("--flip", action="store_true")
    parser.add_argument("--batch-size", type=int, default=4,
                        help="most images per model call (a window and its flip are two); "
                             "default 4")
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                        help="compute precision of a .keras model (bfloat16: fast on CPUs with "
                             "AMX, slower than float32 without it)")


def make_segmenter(args):
    logits_fn, num_classes = load_logits_fn(args.model, args.precision)
    segmenter = Segmenter(logits_fn, args.crop, args.stride_rate, args.scales, args.flip,
                          args.base_size, args.batch_size)
    return segmenter, num_classes


def save_png(array, path, palette=None):
    image = Image.fromarray(array)
    if palette is not None:
        image = Image.fromarray(palette[array])
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


@command
def main(argv=None):
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
    add_inference_args(parser, model_required=False)
    args = parser.parse_args(argv)
    if args.sample:
        return write_sample(args.sample)
    if not (args.images and args.out and args.model):
        parser.error("give IMAGES, --out and --model (or --sample PNG)")

    segmenter, num_classes = make_segmenter(args)
    names, palette = class_names_and_palette(args.model, args.dataset, num_classes)
    os.makedirs(args.out, exist_ok=True)
    for path in args.images:
        image = read_rgb(path)
        classes = segmenter.predict(image)
        stem = os.path.splitext(os.path.basename(path))[0]
        dtype = np.uint8 if num_classes <= 256 else np.uint16
        save_png(classes.astype(dtype), os.path.join(args.out, f"{stem}_classes.png"))
        colour = visualize.with_legend(palette[classes], palette, names, classes)
        save_png(colour, os.path.join(args.out, f"{stem}_color.png"))
        blend = visualize.overlay(image, classes, palette, names, args.alpha)
        save_png(visualize.with_legend(blend, palette, names, classes),
                 os.path.join(args.out, f"{stem}_overlay.png"))
        print(f"{path}: {os.path.join(args.out, stem)}_{{classes,color,overlay}}.png")


def class_names_and_palette(model_path, dataset, num_classes):
    """Class names and colours for a model's pictures: `dataset`'s when given,
    else those of the run's config saved next to the model."""
    config, _ = load_config_for_model(model_path, None, None)
    names = None
    if not dataset and config.data.num_classes == num_classes:
        names = config.data.class_names
    dataset = dataset or config.data.name
    return names or class_names_for(dataset, num_classes), palette_for(dataset, num_classes)


def write_sample(path):
    """Writes one embedded synthetic scene (a val scene of the quick start)."""
    from danet_tf.data.synthetic import make_scene

    image, _ = make_scene(np.random.default_rng(2026), 256, 256)
    save_png(np.asarray(image, np.uint8), path)
    print(f"wrote a sample scene to {path}")
    return path


if __name__ == "__main__":
    main()
