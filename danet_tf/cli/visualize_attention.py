r"""Attention pictures of a trained DANet (as in the paper's Fig. 4).

    python training/visualize_attention.py IMAGE \
        --model saved_models/danet_quickstart/danet_quickstart.keras \
        --points 40,30 90,100 --out attention/

Points are Y,X pixel coordinates: row first, then column, with 0,0 the
top-left pixel (so 40,30 is 40 pixels down and 30 across). Writes, for each
point, `pam_Y_X.png`: the position attention row of that pixel as a heatmap
over the image; `cam_channel<c>_{before,after}.png`: for one class
(--cam-class, default the most frequent predicted one), the response maps of
the three channels that the channel attention strengthens most there, before
and after the module (the paper's Figure 5 view); `cam.png`: the channel
attention matrix. Each picture has a title and a colour bar labelled with the
values at its ends. `sheet.png` holds all of them with the input and the
prediction (with a legend), the titles giving each module's gamma and the
feature grid. Without --points, four points on a grid are used.
"""

import argparse
import os

import keras
import numpy as np

from danet_tf.cli import command
from danet_tf.cli.options import save_png
from danet_tf.data.images import read_rgb
from danet_tf.deploy import visualize
from danet_tf.deploy.loading import (
    class_names_and_palette,
    load_keras_model,
    resolve_model,
    warn_if_bfloat16_is_emulated,
)
from danet_tf.models.precision import PRECISIONS
from danet_tf.models.preprocessing import normalize

POINT_FORMAT = "Y,X pixel coordinates (row, then column; 0,0 is the top-left pixel), e.g. 40,30"


def parse_point(text):
    """`"Y,X"` -> `(y, x)`: a pixel given as row, then column."""
    try:
        y, x = (int(v) for v in text.split(","))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected {POINT_FORMAT}. Received: {text!r}") from err
    return y, x


def check_points(points, height, width):
    """Raises a one-line ValueError naming the first point outside a
    `height` x `width` image."""
    for y, x in points:
        if not (0 <= y < height and 0 <= x < width):
            raise ValueError(f"--points {y},{x} is outside the image of {height}x{width} "
                             f"(height x width): y must be in 0..{height - 1} and x in "
                             f"0..{width - 1}")


def default_points(height, width):
    """Four pixels on a grid, one in each quarter of the image."""
    return [(height // 4, width // 4), (height // 4, 3 * width // 4),
            (3 * height // 4, width // 4), (3 * height // 4, 3 * width // 4)]


def pam_pictures(image, pam, grid, points, gamma):
    """`(file name, panel with colour bar, title)` of each point's PAM row."""
    pictures = []
    for y, x in points:
        row = pam[visualize.feature_index((y, x), image.shape[:2], grid)]
        heat = visualize.mark(visualize.pam_heatmap(row, grid, image), (y, x))
        pictures.append((f"pam_{y}_{x}.png",
                         visualize.with_colour_bar(heat, float(row.min()), float(row.max())),
                         f"PAM row of pixel y={y} x={x} (gamma {gamma:.3g}, "
                         f"grid {grid[0]}x{grid[1]})"))
    return pictures


def cam_matrix_picture(cam, size, gamma):
    """`(file name, panel with colour bar, title)` of the CAM matrix."""
    panel = visualize.with_colour_bar(visualize.cam_picture(cam, size),
                                      float(cam.min()), float(cam.max()))
    return "cam.png", panel, f"CAM matrix {cam.shape[0]}x{cam.shape[1]} (gamma {gamma:.3g})"


def channel_pictures(image, responses, gamma, class_name):
    """`(file name, panel with colour bar, title)` of each channel before and
    after the channel attention, on a colour scale shared by the pair.

    Args:
        responses: `visualize.channel_responses`'s list.
    """
    pictures = []
    for channel, before, after, gain in responses:
        low, high = float(min(before.min(), after.min())), float(max(before.max(), after.max()))
        for stage, values in (("before", before), ("after", after)):
            panel = visualize.with_colour_bar(
                visualize.heatmap(values, image, low=low, high=high), low, high)
            pictures.append((f"cam_channel{channel}_{stage}.png", panel,
                             f"channel {channel} {stage} CAM on '{class_name}' "
                             f"(gamma {gamma:.3g}, change {gain:+.2g})"))
    return pictures


def attention_sheet(image, prediction, pictures):
    """The input, the prediction and every attention picture in one
    `visualize.sheet_layout`: `(sheet, title_boxes, panel_boxes)`."""
    return visualize.sheet_layout([image, prediction] + [p[1] for p in pictures],
                                  ["input", "prediction"] + [p[2] for p in pictures])


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("image")
    parser.add_argument("--model", required=True,
                        help="a .keras DANet, or a preset (directory or catalogue name)")
    parser.add_argument("--points", type=parse_point, nargs="*", metavar="Y,X",
                        help=f"pixels whose position attention to draw, as {POINT_FORMAT}; "
                             "default: four points on a grid")
    parser.add_argument("--dataset", help="palette and class names (default: the run's config "
                                          "next to the model)")
    parser.add_argument("--cam-class", help="class (name or id) whose channel responses to show; "
                                            "default: the most frequent predicted non-background")
    parser.add_argument("--out", required=True)
    parser.add_argument("--precision", choices=PRECISIONS, default="float32",
                        help="compute precision of the model (the attention stays float32)")
    return parser.parse_args(argv)


def load_model_at(path, precision):
    """The Keras DANet at `path` (file or preset), computing at `precision`."""
    model = load_keras_model(path)
    if precision != "float32":
        warn_if_bfloat16_is_emulated(precision)
        model = model.with_precision(precision)
    return model


def predicted_classes(model, image):
    """The model's class map of `image` `(H, W)` and its class count."""
    logits = model.inference_model()(normalize(image)[None], training=False)
    classes = keras.ops.convert_to_numpy(keras.ops.cast(logits, "float32"))[0].argmax(-1)
    return classes, int(logits.shape[-1])


@command
def main(argv=None):
    args = parse_args(argv)
    image = read_rgb(args.image)
    height, width = image.shape[:2]
    points = args.points or default_points(height, width)
    check_points(points, height, width)
    args.model = resolve_model(args.model)
    model = load_model_at(args.model, args.precision)
    pam, cam, grid = visualize.attention_maps(model, image)
    classes, num_classes = predicted_classes(model, image)
    names, palette = class_names_and_palette(args.model, args.dataset, num_classes)
    pam_gamma, cam_gamma = model.gammas()["pam"], model.gammas()["cam"]
    class_id = pick_class(args.cam_class, names, classes)
    responses = visualize.channel_responses(model, image, classes, class_id)

    pictures = (pam_pictures(image, pam, grid, points, pam_gamma)
                + [cam_matrix_picture(cam, min(height, width), cam_gamma)]
                + channel_pictures(image, responses, cam_gamma, names[class_id]))
    os.makedirs(args.out, exist_ok=True)
    for name, panel, title in pictures:
        save_png(visualize.titled(panel, title), os.path.join(args.out, name))
    prediction = visualize.with_legend(palette[classes].astype(np.uint8), palette, names, classes)
    save_png(attention_sheet(image, prediction, pictures)[0], os.path.join(args.out, "sheet.png"))
    print(f"wrote {len(points)} PAM maps, the CAM matrix and the channels CAM strengthens most "
          f"for '{names[class_id]}' (the paper's Figure 5 view), and sheet.png to {args.out}")


def pick_class(requested, names, classes):
    """`--cam-class` (a name or an id), else the most frequent predicted class
    that is not background."""
    if requested is not None:
        if requested in names:
            return list(names).index(requested)
        if requested.isdigit() and int(requested) < len(names):
            return int(requested)
        raise ValueError(f"--cam-class {requested!r}: expected one of {list(names)} or an id.")
    counts = np.bincount(classes.ravel(), minlength=len(names))
    for index in visualize.background_ids(names):
        counts[index] = -1
    return int(np.argmax(counts))


if __name__ == "__main__":
    main()
