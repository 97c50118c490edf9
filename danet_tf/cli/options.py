"""What several commands share: the inference options (model, sliding window,
multi-scale, precision), the segmenter they build, class names and palettes
of a model's pictures, and PNG writing."""

import numpy as np
from PIL import Image

from danet_tf.deploy.inference import Segmenter
from danet_tf.deploy.loading import PRECISIONS, load_logits_fn
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
    parser.add_argument("--precision", choices=PRECISIONS, default="float32",
                        help="compute precision of a .keras model (bfloat16: fast on CPUs with "
                             "AMX, slower than float32 without it)")


def make_segmenter(args):
    logits_fn, num_classes = load_logits_fn(args.model, args.precision)
    segmenter = Segmenter(logits_fn, args.crop, args.stride_rate, args.scales, args.flip,
                          args.base_size, args.batch_size)
    return segmenter, num_classes


def save_png(array, path, palette=None):
    image = Image.fromarray(array if palette is None else palette[array])
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def class_map_dtype(num_classes):
    return np.uint8 if num_classes <= 256 else np.uint16
