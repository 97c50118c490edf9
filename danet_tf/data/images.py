"""Reading image files: the one RGB rule of training, evaluation and prediction.

Every image goes through `read_rgb`, which follows the official DANet code
(`Image.open(path).convert("RGB")`): grayscale is replicated to three
channels, palette images are expanded to their colours, an alpha channel is
dropped. Errors name the file.
"""

import io
import os

import numpy as np
from PIL import Image


class BadExampleError(ValueError):
    """A file that cannot be used; the message names the file and why."""


def _decode(source, name, what):
    """The decoded `PIL.Image` of `source` (a path or a file object) named `name`."""
    try:
        with Image.open(source) as img:
            img.load()
            return img.copy()
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        detail = str(err).replace(repr(source), repr(name))  # Pillow names the file object
        raise BadExampleError(f"{what} file {name!r} is not a readable image: {detail}") from err


def open_image(path, what="Image"):
    """The decoded `PIL.Image` of `path`; `BadExampleError` names the file."""
    if not os.path.isfile(path):
        raise BadExampleError(f"{what} file {path!r} does not exist.")
    return _decode(path, path, what)


def decode_image(data, name, what="Image"):
    """The decoded `PIL.Image` of a file's bytes (read from local disk or a
    bucket); `BadExampleError` names the file `name`."""
    return _decode(io.BytesIO(data), name, what)


def as_rgb(image):
    """A `PIL.Image` as RGB `(H, W, 3)` uint8 (the official `.convert("RGB")` rule)."""
    return np.asarray(image.convert("RGB"), np.uint8)


def read_rgb(path):
    """An RGB image `(H, W, 3)` uint8 (the official `.convert("RGB")` rule)."""
    return as_rgb(open_image(path, "Image"))


def decode_rgb(data, name):
    """`read_rgb` of a file's bytes; errors name the file `name`."""
    return as_rgb(decode_image(data, name, "Image"))
