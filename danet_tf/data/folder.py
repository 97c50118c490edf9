"""Images and masks on local disk: a plain folder, Cityscapes and PASCAL VOC.

Every source here lists `(image_path, mask_path)` pairs and reads them with
Pillow, which returns the raw indices of palette PNGs (VOC) instead of their
colours; images are read as RGB by the one rule of `danet_tf.data.images`.
`read_pair` checks each pair and raises `BadExampleError` naming the file:
missing or unreadable files, a mask that is not single-channel, an
image/mask size mismatch, or a mask value that is neither a class id nor 255.
"""

import os
import threading

import numpy as np

from danet_tf.data.catalog import cityscapes_label_map
from danet_tf.data.images import BadExampleError, open_image, read_rgb
from danet_tf.models.losses import IGNORE_LABEL

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def _stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def _files(directory, suffix=""):
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"Expected a directory of images at {directory!r}; it does not exist."
        )
    found = []
    for root, _, names in os.walk(directory):
        for name in names:
            if (name.lower().endswith(IMAGE_EXTENSIONS)
                    and name.endswith(suffix + os.path.splitext(name)[1])):
                found.append(os.path.join(root, name))
    return sorted(found)


def list_folder_pairs(image_dir, mask_dir):
    """Pairs images and masks by file stem (`a.jpg` <-> `a.png`).

    Raises:
        BadExampleError: an image without a mask, or a mask without an image.
    """
    images = {_stem(p): p for p in _files(image_dir)}
    masks = {_stem(p): p for p in _files(mask_dir)}
    missing = sorted(set(images) - set(masks))
    orphans = sorted(set(masks) - set(images))
    if missing or orphans:
        details = [f"no mask in {mask_dir!r} for image {images[s]!r}" for s in missing[:5]]
        details += [f"no image in {image_dir!r} for mask {masks[s]!r}" for s in orphans[:5]]
        raise BadExampleError(
            f"{len(missing)} images without a mask and {len(orphans)} masks without an image: "
            + "; ".join(details)
        )
    if not images:
        raise BadExampleError(
            f"No images ({', '.join(IMAGE_EXTENSIONS)}) found under {image_dir!r}."
        )
    return [(images[s], masks[s]) for s in sorted(images)]


def list_cityscapes_pairs(root, split):
    """`leftImg8bit/{split}/*/*_leftImg8bit.png` <-> `gtFine/{split}/*/*_gtFine_labelIds.png`."""
    image_dir = os.path.join(root, "leftImg8bit", split)
    pairs = []
    for image_path in _files(image_dir, "_leftImg8bit"):
        city = os.path.basename(os.path.dirname(image_path))
        base = os.path.basename(image_path)[: -len("_leftImg8bit.png")]
        mask_path = os.path.join(root, "gtFine", split, city, f"{base}_gtFine_labelIds.png")
        pairs.append((image_path, mask_path))
    if not pairs:
        raise BadExampleError(f"No *_leftImg8bit.png images found under {image_dir!r}.")
    return pairs


def list_voc_pairs(root, split):
    """Ids from `ImageSets/Segmentation/{split}.txt`, `JPEGImages/*.jpg`,
    `SegmentationClass/*.png`.
    """
    list_file = os.path.join(root, "ImageSets", "Segmentation", f"{split}.txt")
    if not os.path.isfile(list_file):
        raise FileNotFoundError(f"Expected the VOC split list {list_file!r}; it does not exist.")
    with open(list_file) as f:
        ids = [line.strip() for line in f if line.strip()]
    return [
        (
            os.path.join(root, "JPEGImages", f"{i}.jpg"),
            os.path.join(root, "SegmentationClass", f"{i}.png"),
        )
        for i in ids
    ]


def read_mask(path, num_classes, label_map=None):
    """A class-index mask `(H, W)` uint8 (palette indices for palette PNGs)."""
    mask = mask_ids(open_image(path, "Mask"), path, label_map)
    check_mask_values(mask, path, num_classes)
    return mask.astype(np.uint8)


def mask_ids(img, path, label_map=None):
    """The ids `(H, W)` of a decoded mask `img` read from `path`: it must be a
    single-channel image; `label_map` maps raw ids to class ids."""
    if img.mode not in ("L", "P", "I", "I;16"):
        raise BadExampleError(
            f"Mask file {path!r} has mode {img.mode!r}; expected a single-channel index PNG "
            "(mode L or P) holding class ids."
        )
    mask = np.asarray(img)
    if label_map is not None:
        if mask.max(initial=0) >= len(label_map):
            raise BadExampleError(
                f"Mask file {path!r} holds id {mask.max()} outside the label map."
            )
        mask = label_map[mask]
    return mask


def check_mask_values(mask, path, num_classes):
    """Raises `BadExampleError` for a value that is neither a class id nor 255."""
    bad = (mask >= num_classes) & (mask != IGNORE_LABEL)
    if bad.any():
        values = sorted(set(np.unique(mask[bad]).tolist()))[:10]
        raise BadExampleError(
            f"Mask file {path!r} holds values {values} >= num_classes={num_classes} "
            f"that are not the ignore label {IGNORE_LABEL}."
        )


def read_pair(image_path, mask_path, num_classes, label_map=None):
    """Reads and checks one example; raises `BadExampleError` naming the file."""
    image = read_rgb(image_path)
    mask = read_mask(mask_path, num_classes, label_map)
    check_same_size(image, mask, image_path, mask_path)
    return image, mask


def check_same_size(image, mask, image_path, mask_path):
    """Raises `BadExampleError` unless `image` and its `mask` have one size."""
    if image.shape[:2] != mask.shape:
        raise BadExampleError(
            f"Image {image_path!r} is {image.shape[1]}x{image.shape[0]} but its mask "
            f"{mask_path!r} is {mask.shape[1]}x{mask.shape[0]}; they must be the same size."
        )


class SkipCounter:
    """Thread-safe record of the examples skipped with `on_bad_example="skip"`."""

    def __init__(self):
        self._lock = threading.Lock()
        self.skipped = {}

    def add(self, path, reason):
        with self._lock:
            self.skipped[path] = reason

    def __len__(self):
        return len(self.skipped)


def label_map_for(layout):
    return cityscapes_label_map() if layout == "cityscapes" else None


def list_pairs(layout, root, split, image_dir=None, mask_dir=None):
    """Lists the pairs of a `folder`, `cityscapes` or `pascal_voc` layout."""
    if layout == "cityscapes":
        return list_cityscapes_pairs(root, split)
    if layout == "pascal_voc":
        return list_voc_pairs(root, split)
    if layout == "folder":
        image_dir = image_dir or os.path.join(root, split, "images")
        mask_dir = mask_dir or os.path.join(root, split, "masks")
        return list_folder_pairs(image_dir, mask_dir)
    raise ValueError(f"Unknown layout {layout!r}; expected folder, cityscapes or pascal_voc.")
