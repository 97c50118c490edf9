"""The ablation's attention picture: where a trained DANet's (or PAM-only
head's) position attention puts a pixel's mass, on a val scene of a long-range task.

- `context`: the PAM rows of a twin's and a lone object's centres on the
  left, and each row's mass on the far half's objects;
- `marker`: the PAM rows of a region's centre and of a background pixel in
  the region's half, and each row's mass on the far marker (against the
  marker's share of the grid, what uniform attention would give).
"""

import os

import numpy as np

from benchmarks.ablation_config import run_config
from danet_tf.models.head import HEADS

PALETTE = np.array([[0, 0, 0], [200, 30, 30], [40, 170, 60], [40, 90, 220]], np.uint8)
TRUTH_TITLES = {"context": "truth: twin red, lone green",
                "marker": "truth: marker red, region of checkers green, of dots blue"}


def _scene(task, config):
    """The first val scene with what the picture needs: for `context` a twin
    and a lone object on the left; for `marker` a marker on the right.
    Returns `(index, image, truth)`."""
    from danet_tf.data.sources import load_examples

    examples = list(load_examples(config.data, "val").as_numpy_iterator())
    images, masks = [e[0] for e in examples], [e[1] for e in examples]
    width = masks[0].shape[1]
    half = width // 2
    if task == "context":
        index = next(i for i, m in enumerate(masks) if {1, 2} <= set(np.unique(m[:, :half])))
    else:
        index = next(i for i, m in enumerate(masks) if (m[:, half:] == 1).any())
    return index, images[index], masks[index]


def points(task, truth):
    """`[(label, (y, x), far mask on the image)]` for a val scene's mask
    `truth` of `task`: the pixels whose PAM rows the picture draws, and what
    their mass is counted on."""
    half = truth.shape[1] // 2
    left = np.zeros_like(truth, bool)
    left[:, :half] = True
    if task == "context":
        far = (truth > 0) & ~left
        return [(label, _centre((truth == cls) & left), far)
                for cls, label in ((1, "twin"), (2, "lone"))]
    marker = truth == 1
    region = (truth >= 2) & left
    background = (truth == 0) & left
    ys, xs = np.nonzero(background)
    farthest = np.argmax(np.abs(ys - truth.shape[0] / 2) + np.abs(xs - half / 2))  # a corner
    return [("region", _centre(region), marker),
            ("background", (int(ys[farthest]), int(xs[farthest])), marker)]


def _centre(mask):
    ys, xs = np.nonzero(mask)
    y, x = int(ys.mean()), int(xs.mean())
    if not mask[y, x]:  # a concave shape: the mask pixel nearest the mean
        nearest = np.argmin((ys - y) ** 2 + (xs - x) ** 2)
        y, x = int(ys[nearest]), int(xs[nearest])
    return y, x


def attention_figure(workdir, task, out, head="danet", scale=4):
    """Draws the picture of seed 0's `head` (`danet` or `pam`) on `task` into `out`; returns each
    drawn row's attention mass on its far target (and, for `marker`, the
    marker's share of the grid as `uniform`)."""
    from PIL import Image

    from danet_tf.deploy import visualize

    model = _trained_model(workdir, head, task)
    index, image, truth = _scene(task, run_config(head, task, 0, workdir, quick=False))
    pam, grid = visualize.position_attention(model, image)
    big = _enlarged(image, scale)
    panels = [big, _enlarged(PALETTE[truth], scale),
              _enlarged(PALETTE[_predicted_classes(model, image)], scale)]
    titles = [f"{task} val scene {index}", TRUTH_TITLES[task],
              f"{HEADS[head].title} prediction (seed 0)"]
    on = "the far half's objects" if task == "context" else "the marker"
    masses = {}
    for label, point, far in points(task, truth):
        row, target = _pam_row(pam, grid, point, truth.shape), _on_grid(far, grid)
        masses[label] = float(row[target].sum())
        if task == "marker":
            masses["uniform"] = float(target.mean())
        panels.append(_heat_panel(row, big, point, scale))
        titles.append(f"PAM row of a {label} pixel: {masses[label]:.0%} on {on}")
    Image.fromarray(visualize.figure_sheet(panels, titles, columns=3)).save(out, optimize=True)
    return masses


def _trained_model(workdir, head, task):
    """Seed 0's exported `.keras` model of `head` on `task`."""
    import keras

    name = f"{head}_{task}_seed0"
    return keras.models.load_model(os.path.join(workdir, "exports", name, f"{name}.keras"))


def _predicted_classes(model, image):
    """The model's class map of the uint8 `image`."""
    from danet_tf.models.preprocessing import normalize

    return np.asarray(model.inference_model()(normalize(image)[None]))[0].argmax(-1)


def _enlarged(picture, scale):
    """An `(H, W, 3)` uint8 picture `scale` times larger, its pixels kept square."""
    from PIL import Image

    height, width = picture.shape[:2]
    size = (width * scale, height * scale)
    return np.asarray(Image.fromarray(picture).resize(size, Image.NEAREST))


def _pam_row(pam, grid, point, shape):
    """The PAM row of the image pixel `point` (image of `shape`), on the feature `grid`."""
    from danet_tf.deploy import visualize

    return pam[visualize.feature_index(point, shape, grid)].reshape(grid)


def _on_grid(mask, grid):
    """An image `mask` sampled at the pixels of the feature `grid`."""
    height, width = mask.shape
    rows = np.round(np.linspace(0, height - 1, grid[0])).astype(int)
    cols = np.round(np.linspace(0, width - 1, grid[1])).astype(int)
    return mask[np.ix_(rows, cols)]


def _heat_panel(row, big, point, scale):
    """A PAM `row` over the enlarged image `big`, `point` marked, with a colour bar."""
    from danet_tf.deploy import visualize

    heat = visualize.mark(visualize.heatmap(row, big), (point[0] * scale, point[1] * scale), 8)
    return visualize.with_colour_bar(heat, float(row.min()), float(row.max()))
