"""Pictures: PAM rows as heatmaps over the image, the CAM matrix and its
per-channel response maps (the paper's Figure 5), overlays and legends.

The position attention of pixel `i` is row `i` of `softmax(Q K^T)`, an
`(h, w)` map over the layer4 grid (the paper's `s_ji`, Fig. 4): which pixels,
near or far, feed pixel `i`. The channel attention is the `(C, C)` matrix of
`softmax(rowmax(E) - E)`.
"""

import keras
import numpy as np
from PIL import Image, ImageDraw

from danet_tf.data.catalog import IGNORE_LABEL
from danet_tf.models.head import POSITION_ATTENTION_HEADS, require_danet_head, require_head
from danet_tf.models.preprocessing import normalize
from danet_tf.models.resize import resize_bilinear


def attention_maps(model, image):
    """PAM `(h*w, h*w)` and CAM `(C, C)` float32 for one uint8 image `(H, W, 3)`.

    Returns:
        `(pam, cam, (h, w))` where `(h, w)` is the layer4 grid.
    """
    require_danet_head(model, "An attention picture")
    pam, inputs, grid = _position_attention(model, image)
    cam = model.attention_layers()["cam"].attention(inputs["cam"])
    return pam, np.asarray(cam)[0], grid


def position_attention(model, image):
    """PAM `(h*w, h*w)` float32 and the layer4 grid `(h, w)` for one uint8
    image, from a model whose head has position attention (`danet`, `pam`)."""
    require_head(model, POSITION_ATTENTION_HEADS, "A position-attention picture",
                 "position attention")
    pam, _, grid = _position_attention(model, image)
    return pam, grid


def _position_attention(model, image):
    """`(PAM rows as float32, the attention modules' inputs, layer4 grid)`
    for one uint8 image."""
    inputs = model.attention_inputs(np.asarray(normalize(image))[None])
    pam = model.attention_layers()["pam"].attention(inputs["pam"])
    return np.asarray(pam)[0], inputs, tuple(int(d) for d in inputs["pam"].shape[1:3])


def feature_index(point, image_size, grid):
    """Flat layer4 index of image pixel `(y, x)` (align-corners mapping)."""
    (y, x), (height, width), (h, w) = point, image_size, grid
    fy = round(y * (h - 1) / max(height - 1, 1))
    fx = round(x * (w - 1) / max(width - 1, 1))
    return fy * w + fx


def colormap(values):
    """Values in [0, 1] -> RGB uint8 (a blue-cyan-yellow-red ramp)."""
    v = np.clip(values, 0.0, 1.0)[..., None]
    stops = np.array([[0, 0, 128], [0, 128, 255], [0, 255, 255], [255, 255, 0], [255, 0, 0]],
                     np.float64)
    position = v * (len(stops) - 1)
    low = np.floor(position).astype(int).clip(0, len(stops) - 2)
    frac = position - low
    return (stops[low[..., 0]] * (1 - frac) + stops[low[..., 0] + 1] * frac).astype(np.uint8)


def heatmap(values, image, alpha=0.6, low=None, high=None):
    """`(h, w)` values upsampled (align-corners) over the image, coloured from
    `low` to `high` (default: their min and max): `(H, W, 3)` uint8."""
    low = float(values.min()) if low is None else low
    high = float(values.max()) if high is None else high
    heat = (values - low) / max(high - low, 1e-12)
    up = np.asarray(resize_bilinear(heat[None, ..., None].astype(np.float32),
                                    image.shape[:2], True))[0, ..., 0]
    return ((1 - alpha) * image + alpha * colormap(up)).astype(np.uint8)


def pam_heatmap(pam_row, grid, image, alpha=0.6):
    """One attention row over the image: `(H, W, 3)` uint8 overlay."""
    return heatmap(pam_row.reshape(grid), image, alpha)


def with_colour_bar(panel, low, high, width=12):
    """`panel` with a vertical colour bar on its right, its top labelled with
    `high` and its bottom with `low`; the picture is widened to fit the labels."""
    height = panel.shape[0]
    labels = (f"{high:.3g}", f"{low:.3g}")
    measure = scratch_draw()
    label_width = max(text_width(measure, label) for label in labels)
    left = panel.shape[1] + 2 + width + 3
    ramp = colormap(np.linspace(1.0, 0.0, height))[:, None, :].repeat(width, axis=1)
    sheet = Image.new("RGB", (left + label_width + 2, height), (255, 255, 255))
    sheet.paste(Image.fromarray(panel), (0, 0))
    sheet.paste(Image.fromarray(ramp), (panel.shape[1] + 2, 0))
    draw = ImageDraw.Draw(sheet)
    draw.text((left, -measure.textbbox((0, 0), labels[0])[1]), labels[0], fill=(0, 0, 0))
    draw.text((left, height - measure.textbbox((0, 0), labels[1])[3]), labels[1], fill=(0, 0, 0))
    return np.asarray(sheet)


def channel_responses(model, image, classes, class_id, top=3):
    """The Figure-5 view of channel attention for one class.

    With `X` the channel branch's input (`conv5c`) and `Y = CAM(X)` its
    output, the channels whose mean response over the pixels predicted as
    `class_id` grows most through the module.

    Args:
        classes: `(H, W)` predicted class map of `image`.

    Returns:
        A list of `(channel, before (h, w), after (h, w), gain)`.
    """
    require_danet_head(model, "An attention picture")
    before = model.attention_inputs(np.asarray(normalize(image))[None])["cam"]
    after = model.attention_layers()["cam"](before)
    before = keras.ops.convert_to_numpy(keras.ops.cast(before, "float32"))[0]
    after = keras.ops.convert_to_numpy(keras.ops.cast(after, "float32"))[0]
    grid = before.shape[:2]
    region = np.asarray(Image.fromarray((classes == class_id).astype(np.uint8) * 255).resize(
        (grid[1], grid[0]), Image.BILINEAR)) > 127
    if not region.any():
        region = np.ones(grid, bool)
    gain = after[region].mean(0) - before[region].mean(0)
    channels = np.argsort(gain)[::-1][:top]
    return [(int(c), before[..., c], after[..., c], float(gain[c])) for c in channels]


def cam_picture(cam, size=256):
    """The channel attention matrix as a square colour image."""
    normalised = (cam - cam.min()) / max(cam.max() - cam.min(), 1e-12)
    picture = Image.fromarray(colormap(normalised))
    return np.asarray(picture.resize((size, size), Image.NEAREST))


def mark(image, point, radius=4):
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    y, x = point
    draw.ellipse([x - radius, y - radius, x + radius, y + radius], outline=(255, 255, 255), width=2)
    draw.line([x - radius - 3, y, x + radius + 3, y], fill=(0, 0, 0))
    draw.line([x, y - radius - 3, x, y + radius + 3], fill=(0, 0, 0))
    return np.asarray(picture)


def scratch_draw():
    """A drawing context for measuring text in the font `draw.text` uses."""
    return ImageDraw.Draw(Image.new("RGB", (1, 1)))


def line_height(draw):
    """Pixels from one line of text to the next, descenders included."""
    return draw.textbbox((0, 0), "Ag|y")[3] + 2


def text_width(draw, text):
    """Pixels from the drawing point to the right edge of `text`'s ink."""
    return draw.textbbox((0, 0), text)[2]


def wrap(draw, text, width):
    """`text` as lines no wider than `width` pixels: broken at spaces, and
    inside a word only when the word alone is wider than a line."""
    lines = []
    for word in text.split():
        if lines and text_width(draw, f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
            continue
        while len(word) > 1 and text_width(draw, word) > width:
            cut = max([n for n in range(1, len(word)) if text_width(draw, word[:n]) <= width],
                      default=1)
            lines.append(word[:cut])
            word = word[cut:]
        lines.append(word)
    return lines


def title_height(text, width):
    """Height in pixels of `text` wrapped to `width` (see `draw_title`)."""
    draw = scratch_draw()
    return len(wrap(draw, text, width)) * line_height(draw)


def draw_title(draw, text, left, top, width):
    """Draws `text` in black, wrapped to `width` pixels, from `(left, top)`.

    Returns:
        The box `(x0, y0, x1, y1)` of each line drawn (`x1`, `y1` exclusive),
        all within `title_height(text, width)` rows from `top`.
    """
    boxes = []
    for i, line in enumerate(wrap(draw, text, width)):
        xy = (left, top + i * line_height(draw))
        draw.text(xy, line, fill=(0, 0, 0))
        boxes.append(draw.textbbox(xy, line))
    return boxes


def sheet_layout(panels, titles, columns=4, pad=6):
    """Tiles `(H, W, 3)` uint8 panels in a grid, each under its title.

    Titles are wrapped to the column width and each row of panels sits below
    its tallest title, so no title overlaps another, a panel or the border.

    Returns:
        `(sheet, title_boxes, panel_boxes)`: the picture, the box of every
        line of title text and of every panel, as `(x0, y0, x1, y1)` with
        `x1`, `y1` exclusive.
    """
    width = max(p.shape[1] for p in panels)
    height = max(p.shape[0] for p in panels)
    columns = min(columns, len(panels))
    rows = [range(i, min(i + columns, len(panels))) for i in range(0, len(panels), columns)]
    bands = [max(title_height(titles[i], width) for i in row) for row in rows]
    sheet = Image.new("RGB", (columns * (width + pad) + pad,
                              pad + sum(band + height + pad for band in bands)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    title_boxes, panel_boxes, top = [], [], pad
    for row, band in zip(rows, bands):
        for column, i in enumerate(row):
            left = pad + column * (width + pad)
            title_boxes += draw_title(draw, titles[i], left, top, width)
            sheet.paste(Image.fromarray(panels[i]), (left, top + band))
            panel_boxes.append((left, top + band, left + panels[i].shape[1],
                                top + band + panels[i].shape[0]))
        top += band + height + pad
    return np.asarray(sheet), title_boxes, panel_boxes


def figure_sheet(panels, titles, columns=4, pad=6):
    """Tiles `(H, W, 3)` uint8 panels with captions into one picture (see
    `sheet_layout`)."""
    return sheet_layout(panels, titles, columns, pad)[0]


def titled(panel, title, pad=4):
    """One panel with its title above it, on a white margin of `pad` pixels."""
    return figure_sheet([panel], [title], columns=1, pad=pad)


def class_boundaries(classes):
    """`(H, W)` bool: pixels whose right or lower neighbour has another class."""
    edges = np.zeros(classes.shape, bool)
    edges[:, :-1] |= classes[:, 1:] != classes[:, :-1]
    edges[:-1, :] |= classes[1:, :] != classes[:-1, :]
    return edges


def background_ids(class_names):
    """Ids of the classes named "background", in any case."""
    return {i for i, name in enumerate(class_names) if str(name).lower() == "background"}


def overlay(image, classes, palette, class_names, alpha=0.5, untinted=None):
    """The image with each object tinted in its class colour and outlined.

    Pixels of the `untinted` class ids (default: the classes named
    "background", in any case; none when no class has that name) and of the
    ignore label 255 stay exactly as in the image. Every boundary that
    touches a tinted class is drawn in white, so an object whose own colour
    matches its class colour still shows its outline; boundaries between two
    untinted classes are not drawn.
    """
    untinted = background_ids(class_names) if untinted is None else set(untinted)
    keep = np.isin(classes, sorted(untinted | {IGNORE_LABEL}))
    colours = palette[np.where(keep, 0, classes)]  # no palette row for 255 is needed
    out = np.where(keep[..., None], image, (1 - alpha) * image + alpha * colours)
    out[class_boundaries(np.where(keep, -1, classes.astype(np.int64)))] = 255
    return out.astype(np.uint8)


def legend_entry(class_id, palette, class_names):
    """Name and swatch colour of `class_id`; the ignore label 255, which has
    no palette row, is "ignore" in white."""
    if class_id == IGNORE_LABEL and class_id >= len(palette):
        return "ignore", (255, 255, 255)
    name = class_names[class_id] if class_id < len(class_names) else str(class_id)
    return name, tuple(int(v) for v in palette[class_id])


def with_legend(picture, palette, class_names, classes, swatch=12):
    """`picture` with a legend below it: a swatch and the name of every class
    present in `classes`, with its share of the pixels."""
    present, counts = np.unique(classes, return_counts=True)
    rows = [(*legend_entry(int(c), palette, class_names), 100.0 * n / classes.size)
            for c, n in zip(present, counts)]
    width = max(picture.shape[1], 160)
    sheet = Image.new("RGB", (width, picture.shape[0] + 6 + (swatch + 4) * len(rows)),
                      (255, 255, 255))
    sheet.paste(Image.fromarray(picture), (0, 0))
    draw = ImageDraw.Draw(sheet)
    for i, (name, colour, share) in enumerate(rows):
        top = picture.shape[0] + 4 + i * (swatch + 4)
        draw.rectangle([4, top, 4 + swatch, top + swatch], fill=colour, outline=(0, 0, 0))
        draw.text((10 + swatch, top), f"{name} ({share:.1f} %)", fill=(0, 0, 0))
    return np.asarray(sheet)
