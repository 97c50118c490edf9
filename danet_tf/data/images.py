"""Reading image files: the one RGB rule of training, evaluation and prediction.

Every image goes through `read_rgb`, which follows the official DANet code
(`Image.open(path).convert("RGB")`): grayscale is replicated to three
channels, palette images are expanded to their colours, an alpha channel is
dropped. Errors name the file.
"""

import os

import numpy as np
from PIL import Image


class BadExampleError(ValueError):
    """A file that cannot be used; the message names the file and why."""


def open_image(path, what="Image"):
    """The decoded `PIL.Image` of `path`; `BadExampleError` names the file."""
    if not os.path.isfile(path):
        raise BadExampleError(f"{what} file {path!r} does not exist.")
    try:
        with Image.open(path) as img:
            img.load()
            return img.copy()
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise BadExampleError(f"{what} file {path!r} is not a readable image: {err}") from err


def read_rgb(path):
    """An RGB image `(H, W, 3)` uint8 (the official `.convert("RGB")` rule)."""
    return np.asarray(open_image(path, "Image").convert("RGB"), np.uint8)
