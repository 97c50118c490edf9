"""What several commands share: the inference options (model, sliding window,
multi-scale, precision), the segmenter they build, class names and palettes
of a model's pictures, and PNG writing."""

import numpy as np
from PIL import Image

from danet_tf.config import PROTOCOLS
from danet_tf.deploy.inference import STRIDE_RATE, Segmenter
from danet_tf.deploy.loading import load_logits_fn
from danet_tf.deploy.mmseg_inference import MMSegSegmenter
from danet_tf.files import atomic_path
from danet_tf.models.precision import CHOICES


def add_inference_args(parser, model_required=True):
    parser.add_argument("--model", required=model_required,
                        help=".keras file, preset directory or name (downloaded on first use), "
                             "SavedModel directory or OpenVINO .xml")
    parser.add_argument("--protocol", choices=PROTOCOLS,
                        help="test protocol: official (DANet's; the default) or mmseg (what an "
                             "mmseg conversion records, its windows from eval.*)")
    parser.add_argument("--crop", type=int, help="sliding-window size (default: whole image)")
    parser.add_argument("--stride-rate", type=float, default=STRIDE_RATE)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0])
    parser.add_argument("--base-size", type=int, help="long side at scale 1.0")
    parser.add_argument("--flip", action="store_true")
    parser.add_argument("--batch-size", type=int, default=4,
                        help="most images per model call (a window and its flip are two); "
                             "default 4")
    parser.add_argument("--precision", choices=CHOICES, default="auto",
                        help="auto (default): the int8 IR exported with the model, else "
                             "bfloat16 on CPUs with AMX, else float32 (says which); or a "
                             "compute precision of a .keras model")


def make_segmenter(args, config):
    """The segmenter of `--protocol` (else `config.eval.protocol`): the
    official one with the command's window options, or mmseg's with
    `config.eval`'s."""
    protocol = args.protocol or config.eval.protocol
    official_options = {"--crop": args.crop, "--scales": args.scales != [1.0],
                        "--flip": args.flip, "--base-size": args.base_size}
    if protocol == "mmseg" and any(official_options.values()):
        raise ValueError(
            f"{', '.join(k for k, v in official_options.items() if v)}: options of the "
            "official protocol; the mmseg protocol takes eval.scale, eval.crop and "
            "eval.stride (--set), or pass --protocol official")
    logits_fn, num_classes = load_logits_fn(args.model, args.precision)
    if protocol == "mmseg":
        e = config.eval
        segmenter = MMSegSegmenter(logits_fn, e.scale, e.crop, e.stride,
                                   config.model.align_corners, args.batch_size)
    else:
        segmenter = Segmenter(logits_fn, args.crop, args.stride_rate, args.scales, args.flip,
                              args.base_size, args.batch_size)
    return segmenter, num_classes


def describe_protocol(args, config):
    """One line naming the protocol a segmenter of `make_segmenter` follows."""
    if (args.protocol or config.eval.protocol) == "mmseg":
        e = config.eval
        windows = f"crop {list(e.crop)} stride {list(e.stride)}" if e.crop else "whole image"
        return f"mmseg protocol: resize to {list(e.scale)}, {windows}"
    return f"scales {args.scales}, flip {args.flip}, crop {args.crop}"


def save_png(array, path, palette=None):
    image = Image.fromarray(array if palette is None else palette[array])
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def class_map_dtype(num_classes):
    return np.uint8 if num_classes <= 256 else np.uint16
