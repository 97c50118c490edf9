"""Embedded synthetic scenes: the default dataset, generated from a seed.

Each scene is a smooth, randomly coloured background with several textured
objects pasted on it. Every object gets random colours drawn from the same
distribution whatever its class, so a pixel's colour says nothing about its
class: the class is the *texture* (stripe orientation, checkers, dots, rings),
which a network has to read from the neighbourhood. Objects vary in shape
(ellipses, rectangles, triangles), scale and texture period, overlap (later
objects occlude earlier ones) and the whole image gets Gaussian noise.
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
    kind = rng.integers(3)
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


def make_split(num_images, seed, height=128, width=128):
    """`num_images` scenes as arrays `(N, H, W, 3)` uint8 and `(N, H, W)` uint8."""
    rng = np.random.default_rng(seed)
    scenes = [make_scene(rng, height, width) for _ in range(num_images)]
    return np.stack([s[0] for s in scenes]), np.stack([s[1] for s in scenes])
