"""Small shared helpers for the tests: fake datasets written to disk."""

import os

import numpy as np
from PIL import Image


def write_png(path, array, palette=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    array = np.asarray(array, np.uint8)
    image = Image.fromarray(array)
    if palette is not None:
        image = Image.new("P", (array.shape[1], array.shape[0]))
        image.putdata(array.ravel().tolist())
        image.putpalette(palette)
    image.save(path)


def random_pair(rng, height, width, num_classes):
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    mask = rng.integers(0, num_classes, (height, width), dtype=np.uint8)
    mask[0, :3] = 255
    return image, mask


def make_folder_dataset(root, split="train", count=3, size=(20, 24), num_classes=4, seed=0):
    """root/<split>/images/*.jpg|png and root/<split>/masks/*.png; returns the arrays."""
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(count):
        image, mask = random_pair(rng, *size, num_classes)
        write_png(os.path.join(root, split, "images", f"img{i}.png"), image)
        write_png(os.path.join(root, split, "masks", f"img{i}.png"), mask)
        pairs.append((image, mask))
    return pairs
