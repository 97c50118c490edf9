"""Embedded synthetic scenes, generated from a seed: two tasks.

`textures` (the quick start's default): each scene is a smooth, randomly
coloured background with several textured objects pasted on it. Every object
gets random colours drawn from the same distribution whatever its class, so a
pixel's colour says nothing about its class: the class is the *texture*
(stripe orientation, checkers, dots), which a network has to read from the
neighbourhood. Objects vary in shape (ellipses, rectangles, triangles), scale
and texture period, overlap (later objects occlude earlier ones) and the whole
image gets Gaussian noise. Local texture decides every pixel: the task needs
no long-range context.

`context` (the ablation's long-range task, `make_context_scene`): whether an
object is a `twin` or `lone` is decided only by the other half of the image.
See `make_context_scene`.
"""

import numpy as np

CLASS_NAMES = (
    "background",
    "horizontal_stripes",
    "vertical_stripes",
    "diagonal_stripes",
    "checkerboard",
    "dots",
)


TASKS = ("textures", "context")
CONTEXT_CLASS_NAMES = ("background", "twin", "lone")


def _texture(kind, yy, xx, period, phase):
    """A {0, 1} pattern of the given class over pixel grids `yy`, `xx`."""
    u = yy / period + phase[0]
    v = xx / period + phase[1]
    if kind == 1:
        return np.floor(u) % 2
    if kind == 2:
        return np.floor(v) % 2
    if kind == 3:
        return np.floor((yy + xx) / (1.4 * period) + phase[0]) % 2
    if kind == 4:
        return (np.floor(u) + np.floor(v)) % 2
    # Dots on a grid.
    return (((u % 1.0) - 0.5) ** 2 + ((v % 1.0) - 0.5) ** 2 < 0.1).astype(np.float64)


def _shape_mask(rng, yy, xx, size):
    """A random ellipse, rectangle or triangle of about `size` pixels."""
    cy, cx = rng.uniform(0, yy.shape[0]), rng.uniform(0, xx.shape[1])
    ry, rx = size * rng.uniform(0.5, 1.0, 2)
    return _shape_region(rng.integers(3), yy, xx, cy, cx, ry, rx)


def _shape_region(kind, yy, xx, cy, cx, ry, rx):
    """Ellipse (0), rectangle (1) or triangle (2) centred at `(cy, cx)` with radii `(ry, rx)`."""
    if kind == 0:
        return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    if kind == 1:
        return (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)
    # Triangle: below a line through the apex, inside the base.
    return (yy >= cy - ry) & (yy <= cy + ry) & (np.abs(xx - cx) <= rx * (yy - cy + ry) / (2 * ry))


def _smooth_background(rng, height, width):
    coarse = rng.uniform(0, 255, (4, 4, 3))
    ys = np.linspace(0, 3, height)
    xs = np.linspace(0, 3, width)
    y0, x0 = np.clip(ys.astype(int), 0, 2), np.clip(xs.astype(int), 0, 2)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    c = coarse
    top = c[y0][:, x0] * (1 - fx) + c[y0][:, x0 + 1] * fx
    bottom = c[y0 + 1][:, x0] * (1 - fx) + c[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def make_scene(rng, height=128, width=128, max_objects=8, noise_std=12.0):
    """One `(image uint8 (H, W, 3), mask uint8 (H, W))` scene."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    image = _smooth_background(rng, height, width)
    mask = np.zeros((height, width), np.uint8)
    num_classes = len(CLASS_NAMES)
    for _ in range(rng.integers(3, max_objects + 1)):
        cls = int(rng.integers(1, num_classes))
        region = _shape_mask(rng, yy, xx, size=rng.uniform(0.2, 0.45) * min(height, width))
        pattern = _texture(cls, yy, xx, rng.uniform(8.0, 16.0), rng.uniform(0, 1, 2))
        colours = rng.uniform(0, 255, (2, 3))
        textured = colours[0] * pattern[..., None] + colours[1] * (1 - pattern[..., None])
        image[region] = textured[region]
        mask[region] = cls
    image += rng.normal(0.0, noise_std, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), mask


def make_context_scene(rng, height=64, width=128, noise_std=12.0):
    """One `(image uint8 (H, W, 3), mask uint8 (H, W))` scene of the long-range task.

    Principle: two classes that look the same up close and differ only in
    what lies at least half the image away. Four textured objects sit in the
    four quadrants, centres in the outer quarters of the width (`x` in
    `[0.1, 0.25] W` on the left, `[0.75, 0.9] W` on the right), so any
    left-right pair of centres is at least `W / 2` apart. `k` of the left
    objects (`k` uniform in 0, 1, 2) have a *twin* on the right: the same
    texture kind, period, phase and two colours (the shapes and sizes are
    drawn independently). Every other object is *lone*: its texture kind
    appears nowhere else in the scene. Twins and lone objects draw their
    appearance and position from the same distributions and are pasted in
    random order (occlusion says nothing either), so no window that
    sees only one object can tell them apart; the label `twin` (1) or `lone`
    (2) is set by the presence of the same texture in the far half.
    """
    if height > width:
        raise ValueError(f"The context task needs width >= height (left and right halves). "
                         f"Received: height={height}, width={width}")
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    image = _smooth_background(rng, height, width)
    mask = np.zeros((height, width), np.uint8)
    for obj in context_objects(rng, height, width):
        cy, cx = obj["cy"], obj["cx"]
        region = _shape_region(obj["shape"], yy, xx, cy, cx, obj["ry"], obj["rx"])
        # The texture is anchored at the object's centre: twins look the same.
        kind, period, phase, colours = obj["look"]
        pattern = _texture(kind, yy - cy, xx - cx, period, phase)
        textured = colours[0] * pattern[..., None] + colours[1] * (1 - pattern[..., None])
        image[region] = textured[region]
        mask[region] = obj["class"]
    image += rng.normal(0.0, noise_std, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), mask


def context_objects(rng, height, width):
    """The four objects of a `make_context_scene`, in paint order (later
    ones occlude earlier ones): dicts with `class` (1 twin, 2 lone), `side`
    (0 left, 1 right), `row` (0 top, 1 bottom), `look` (texture kind,
    period, phase, two colours; shared by a twin pair), `shape`, centre
    `cy, cx` and radii `ry, rx` in pixels."""
    pairs = int(rng.integers(0, 3))
    left, right = rng.permutation(2), rng.permutation(2)  # quadrant rows (top 0, bottom 1)
    kinds = rng.permutation(np.arange(1, len(CLASS_NAMES)))  # distinct texture kinds
    looks = [(int(kinds[i]), rng.uniform(5.0, 9.0), rng.uniform(0, 1, 2),
              rng.uniform(0, 255, (2, 3))) for i in range(4 - pairs)]
    # (row, side, look index, class): the first `pairs` looks are shared.
    objects = [(left[i], 0, i, 1) for i in range(pairs)] + [(right[i], 1, i, 1)
                                                            for i in range(pairs)]
    lone = iter(range(pairs, 4 - pairs))
    objects += [(row, 0, next(lone), 2) for row in left[pairs:]]
    objects += [(row, 1, next(lone), 2) for row in right[pairs:]]
    placed = []
    # Painted in random order: which object occludes which says nothing of its class.
    for index in rng.permutation(len(objects)):
        row, side, look, cls = objects[index]
        cy = (row + rng.uniform(0.3, 0.7)) * height / 2
        cx = (rng.uniform(0.1, 0.25) if side == 0 else rng.uniform(0.75, 0.9)) * width
        ry, rx = rng.uniform(0.6, 0.9, 2) * height / 4
        placed.append({"class": cls, "side": side, "row": int(row), "look": looks[look],
                       "look_id": look, "shape": int(rng.integers(3)),
                       "cy": cy, "cx": cx, "ry": ry, "rx": rx})
    return placed


def make_split(num_images, seed, height=128, width=128, task="textures"):
    """`num_images` scenes of `task` (`TASKS`) as arrays `(N, H, W, 3)` uint8
    and `(N, H, W)` uint8."""
    if task not in TASKS:
        raise ValueError(f"data.synthetic_task must be one of {TASKS}. Received: {task!r}")
    scene = make_scene if task == "textures" else make_context_scene
    rng = np.random.default_rng(seed)
    scenes = [scene(rng, height, width) for _ in range(num_images)]
    return np.stack([s[0] for s in scenes]), np.stack([s[1] for s in scenes])
