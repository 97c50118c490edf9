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

The ablation's two long-range tasks, where a region's class is decided only
by what lies at least half the image away:
- `context` (`make_context_scene`): whether an object is a `twin` or `lone`
  depends on whether its look repeats in the other half;
- `marker` (`make_marker_scene`): a region's class names the kind of the
  *marker* object in the other half, and marker and region look different.
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


CONTEXT_CLASS_NAMES = ("background", "twin", "lone")
MARKER_CLASS_NAMES = ("background", "marker", "region_of_checkers", "region_of_dots")
# The class names of each `data.synthetic_task`.
TASK_CLASS_NAMES = {"textures": CLASS_NAMES, "context": CONTEXT_CLASS_NAMES,
                    "marker": MARKER_CLASS_NAMES}
TASKS = tuple(TASK_CLASS_NAMES)
# The marker task's textures: markers are checkered or dotted, regions striped.
MARKER_KINDS = (4, 5)  # checkerboard -> region_of_checkers, dots -> region_of_dots
REGION_KINDS = (1, 2, 3)  # horizontal, vertical, diagonal stripes


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
    image = _smooth_background(rng, height, width)
    return _paint(image, context_objects(rng, height, width), rng, noise_std)


def _paint(image, objects, rng, noise_std):
    """Paints `objects` (dicts with `class`, `look`, `shape`, `cy, cx, ry,
    rx`) in list order on the float background `image`, adds noise; returns
    `(image uint8, mask uint8)`."""
    height, width = image.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    mask = np.zeros((height, width), np.uint8)
    for obj in objects:
        cy, cx = obj["cy"], obj["cx"]
        region = _shape_region(obj["shape"], yy, xx, cy, cx, obj["ry"], obj["rx"])
        kind, period, phase, colours = obj["look"]
        pattern = _texture(kind, yy - cy, xx - cx, period, phase)  # anchored at the centre
        textured = colours[0] * pattern[..., None] + colours[1] * (1 - pattern[..., None])
        image[region] = textured[region]
        mask[region] = obj["class"]
    image += rng.normal(0.0, noise_std, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), mask


def _quadrant_object(rng, row, side, height, width):
    """Shape, centre and radii of an object in quadrant (`row`, `side`):
    centre in the middle 40 % of the row, `x` in the outer quarter of the
    side (`[0.1, 0.25] W` left, `[0.75, 0.9] W` right)."""
    cy = (row + rng.uniform(0.3, 0.7)) * height / 2
    cx = (rng.uniform(0.1, 0.25) if side == 0 else rng.uniform(0.75, 0.9)) * width
    ry, rx = rng.uniform(0.6, 0.9, 2) * height / 4
    return {"side": int(side), "row": int(row), "shape": int(rng.integers(3)),
            "cy": cy, "cx": cx, "ry": ry, "rx": rx}


def make_marker_scene(rng, height=64, width=128, noise_std=12.0):
    """One `(image uint8 (H, W, 3), mask uint8 (H, W))` scene of the marker task.

    Rule: one *marker* sits in one half (side, quadrant row and kind uniform);
    its kind is readable locally (checkerboard or dots, `MARKER_KINDS`). The
    other half holds one or two *regions* (count uniform, distinct quadrant
    rows) with a striped texture (`REGION_KINDS`, uniform), and every region
    is labelled by the marker's kind: `region_of_checkers` (2) or
    `region_of_dots` (3); the marker itself is `marker` (1). Centres sit in
    the outer quarters of the width, so a region is at least `W / 2` from its
    marker. A region's texture kind, period, phase, colours, shape, size,
    position and paint order are drawn from the same distributions whatever
    its class: only the far half tells the two region classes apart.
    """
    if height > width:
        raise ValueError(f"The marker task needs width >= height (left and right halves). "
                         f"Received: height={height}, width={width}")
    image = _smooth_background(rng, height, width)
    return _paint(image, marker_objects(rng, height, width), rng, noise_std)


def _look(rng, kind):
    return (int(kind), rng.uniform(5.0, 9.0), rng.uniform(0, 1, 2), rng.uniform(0, 255, (2, 3)))


def marker_objects(rng, height, width):
    """The objects of a `make_marker_scene` in paint order: dicts with
    `class`, `side`, `row`, `look` (texture kind, period, phase, colours),
    `shape`, centre `cy, cx` and radii `ry, rx` in pixels."""
    side, row, which = (int(v) for v in rng.integers(0, 2, 3))
    marker = {"class": 1, "look": _look(rng, MARKER_KINDS[which]),
              **_quadrant_object(rng, row, side, height, width)}
    rows = rng.permutation(2)[:int(rng.integers(1, 3))]
    regions = [{"class": 2 + which, "look": _look(rng, rng.choice(REGION_KINDS)),
                **_quadrant_object(rng, r, 1 - side, height, width)} for r in rows]
    objects = [marker] + regions
    return [objects[i] for i in rng.permutation(len(objects))]


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
        placed.append({"class": cls, "look": looks[look], "look_id": look,
                       **_quadrant_object(rng, row, side, height, width)})
    return placed


def make_split(num_images, seed, height=128, width=128, task="textures"):
    """`num_images` scenes of `task` (`TASKS`) as arrays `(N, H, W, 3)` uint8
    and `(N, H, W)` uint8."""
    if task not in TASKS:
        raise ValueError(f"data.synthetic_task must be one of {TASKS}. Received: {task!r}")
    scene = {"textures": make_scene, "context": make_context_scene,
             "marker": make_marker_scene}[task]
    rng = np.random.default_rng(seed)
    scenes = [scene(rng, height, width) for _ in range(num_images)]
    return np.stack([s[0] for s in scenes]), np.stack([s[1] for s in scenes])
