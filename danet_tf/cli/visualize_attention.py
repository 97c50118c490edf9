"""Attention pictures of a trained DANet (as in the paper's Fig. 4).

    python training/visualize_attention.py IMAGE \
        --model saved_models/danet_quickstart/danet_quickstart.keras \
        --points 40,30 90,100 --out attention/

Writes, for each point (y,x in image pixels), `pam_y_x.png`: the position
attention row of that pixel as a heatmap over the image; `cam.png`: the
channel attention matrix; `sheet.png`: all of it with the input and the
prediction in one figure. Without --points, four points on a grid are used.
"""

import argparse
import os

import numpy as np
from PIL import Image

from danet_tf.cli import command
from danet_tf.data.catalog import palette_for
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
    parser.add_argument("--dataset", default="synthetic")
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
        weights = model.get_weights()
        model = type(model).from_config({**model.get_config(), "dtype": "mixed_bfloat16"})
        model.set_weights(weights)
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
    prediction = palette_for(args.dataset, int(logits.shape[-1]))[classes]

    os.makedirs(args.out, exist_ok=True)
    panels, titles = [image, prediction.astype(np.uint8)], ["input", "prediction"]
    for point in points:
        row = pam[visualize.feature_index(point, (height, width), grid)]
        heat = visualize.mark(visualize.pam_heatmap(row, grid, image), point)
        Image.fromarray(heat).save(os.path.join(args.out, f"pam_{point[0]}_{point[1]}.png"))
        panels.append(heat)
        titles.append(f"PAM row at y={point[0]} x={point[1]}")
    cam_image = visualize.cam_picture(cam, size=min(height, width))
    Image.fromarray(cam_image).save(os.path.join(args.out, "cam.png"))
    panels.append(cam_image)
    titles.append(f"CAM {cam.shape[0]}x{cam.shape[1]}")
    Image.fromarray(visualize.figure_sheet(panels, titles)).save(
        os.path.join(args.out, "sheet.png"))
    print(f"wrote {len(points)} PAM maps, cam.png and sheet.png to {args.out}")


if __name__ == "__main__":
    main()
