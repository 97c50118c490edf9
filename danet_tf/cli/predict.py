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
from danet_tf.data.catalog import palette_for
from danet_tf.data.images import read_rgb
from danet_tf.deploy.inference import Segmenter
from danet_tf.deploy.loading import load_logits_fn
from danet_tf.files import atomic_path


def add_inference_args(parser):
    parser.add_argument("--model", required=True,
                        help=".keras file, SavedModel directory or OpenVINO .xml")
    parser.add_argument("--crop", type=int, help="sliding-window size (default: whole image)")
    parser.add_argument("--stride-rate", type=float, default=2 / 3)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0])
    parser.add_argument("--base-size", type=int, help="long side at scale 1.0")
    parser.add_argument("--flip", action="store_true")
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                        help="compute precision of a .keras model (bfloat16: fast on CPUs with "
                             "AMX / AVX512-BF16)")


def make_segmenter(args):
    logits_fn, num_classes = load_logits_fn(args.model, args.precision)
    segmenter = Segmenter(logits_fn, args.crop, args.stride_rate, args.scales, args.flip,
                          args.base_size)
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
    parser.add_argument("images", nargs="+")
    parser.add_argument("--out", required=True)
    parser.add_argument("--dataset", default="synthetic", help="palette: cityscapes, ade20k, ...")
    parser.add_argument("--alpha", type=float, default=0.5, help="overlay opacity")
    add_inference_args(parser)
    args = parser.parse_args(argv)

    segmenter, num_classes = make_segmenter(args)
    palette = palette_for(args.dataset, num_classes)
    os.makedirs(args.out, exist_ok=True)
    for path in args.images:
        image = read_rgb(path)
        classes = segmenter.predict(image)
        stem = os.path.splitext(os.path.basename(path))[0]
        dtype = np.uint8 if num_classes <= 256 else np.uint16
        save_png(classes.astype(dtype), os.path.join(args.out, f"{stem}_classes.png"))
        save_png(classes, os.path.join(args.out, f"{stem}_color.png"), palette)
        overlay = (1 - args.alpha) * image + args.alpha * palette[classes]
        save_png(overlay.astype(np.uint8), os.path.join(args.out, f"{stem}_overlay.png"))
        print(f"{path}: {os.path.join(args.out, stem)}_{{classes,color,overlay}}.png")


if __name__ == "__main__":
    main()
