"""Attention pictures of a trained DANet (as in the paper's Fig. 4).

    python training/visualize_attention.py IMAGE \
        --model saved_models/danet_quickstart/danet_quickstart.keras \
        --points 40,30 90,100 --out attention/

Writes, for each point (y,x in image pixels), `pam_y_x.png`: the position
attention row of that pixel as a heatmap over the image, with a colour bar;
`cam_channel<c>_{before,after}.png`: for one class (--cam-class, default the
most frequent predicted one), the response maps of the three channels that
the channel attention strengthens most there, before and after the module
(the paper's Figure 5 view); `cam.png`: the channel attention matrix;
`sheet.png`: all of it with the input and the prediction (with a legend), the
titles giving each module's gamma and the feature grid. Without --points,
four points on a grid are used.
"""

import argparse
import os

import numpy as np

from danet_tf.cli import command
from danet_tf.cli.predict import class_names_and_palette, save_png
from danet_tf.data.images import read_rgb
from danet_tf.deploy import visualize
from danet_tf.models.preprocessing import normalize


def parse_point(text):
    try:
        y, x = (int(v) for v in text.split(","))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"points are y,x pixel pairs. Received: {text!r}") from err
    return y, x


@command
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("image")
    parser.add_argument("--model", required=True, help="a .keras DANet")
    parser.add_argument("--points", type=parse_point, nargs="*")
    parser.add_argument("--dataset", help="palette and class names (default: the run's config "
                                          "next to the model)")
    parser.add_argument("--cam-class", help="class (name or id) whose channel responses to show; "
                                            "default: the most frequent predicted non-background")
    parser.add_argument("--out", required=True)
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                        help="compute precision of the model (the attention stays float32)")
    args = parser.parse_args(argv)

    import keras

    import danet_tf  # noqa: F401

    model = keras.models.load_model(args.model)
    if args.precision != "float32":
        from danet_tf.deploy.loading import warn_if_bfloat16_is_emulated

        warn_if_bfloat16_is_emulated(args.precision)
        model = model.with_precision(args.precision)
    image = read_rgb(args.image)
    height, width = image.shape[:2]
    points = args.points or [(height // 4, width // 4), (height // 4, 3 * width // 4),
                             (3 * height // 4, width // 4), (3 * height // 4, 3 * width // 4)]
    for y, x in points:
        if not (0 <= y < height and 0 <= x < width):
            raise SystemExit(f"point {y},{x} is outside the {height}x{width} image")
    pam, cam, grid = visualize.attention_maps(model, image)
    logits = model.inference_model()(normalize(image)[None], training=False)
    classes = keras.ops.convert_to_numpy(keras.ops.cast(logits, "float32"))[0].argmax(-1)
    num_classes = int(logits.shape[-1])
    names, palette = class_names_and_palette(args.model, args.dataset, num_classes)
    head = model.get_layer("head")
    pam_gamma = float(keras.ops.convert_to_numpy(head.get_layer("sa").gamma)[0])
    cam_gamma = float(keras.ops.convert_to_numpy(head.get_layer("sc").gamma)[0])

    os.makedirs(args.out, exist_ok=True)
    prediction = visualize.with_legend(palette[classes].astype(np.uint8), palette, names, classes)
    panels, titles = [image, prediction], ["input", "prediction"]
    for point in points:
        row = pam[visualize.feature_index(point, (height, width), grid)]
        heat = visualize.mark(visualize.pam_heatmap(row, grid, image), point)
        heat = visualize.with_colour_bar(heat, float(row.min()), float(row.max()))
        save_png(heat, os.path.join(args.out, f"pam_{point[0]}_{point[1]}.png"))
        panels.append(heat)
        titles.append(f"PAM row y={point[0]} x={point[1]}, gamma {pam_gamma:.3g}, "
                      f"grid {grid[0]}x{grid[1]}")
    save_png(visualize.cam_picture(cam, size=min(height, width)),
             os.path.join(args.out, "cam.png"))
    class_id = pick_class(args.cam_class, names, classes)
    for channel, before, after, gain in visualize.channel_responses(model, image, classes,
                                                                    class_id):
        low, high = float(min(before.min(), after.min())), float(max(before.max(), after.max()))
        for stage, values in (("before", before), ("after", after)):
            panel = visualize.with_colour_bar(
                visualize.heatmap(values, image, low=low, high=high), low, high)
            save_png(panel, os.path.join(args.out, f"cam_channel{channel}_{stage}.png"))
            panels.append(panel)
            titles.append(f"channel {channel} {stage} CAM (gamma {cam_gamma:.3g}, "
                          f"change {gain:+.2g})")
    sheet = visualize.figure_sheet(panels, titles)
    save_png(sheet, os.path.join(args.out, "sheet.png"))
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
    for index, name in enumerate(names):
        if name == "background":
            counts[index] = -1
    return int(np.argmax(counts))


if __name__ == "__main__":
    main()
