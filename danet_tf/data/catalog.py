"""Class names, colour palettes and label maps of the supported datasets."""

import numpy as np

from danet_tf.data.synthetic import CLASS_NAMES as SYNTHETIC_CLASSES
from danet_tf.data.synthetic import CONTEXT_CLASS_NAMES, MARKER_CLASS_NAMES
from danet_tf.models.losses import IGNORE_LABEL

CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light",
    "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car",
    "truck", "bus", "train", "motorcycle", "bicycle",
)
# labelIds (0..33) of the 19 evaluated classes, in train-id order.
CITYSCAPES_EVAL_IDS = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)
CITYSCAPES_PALETTE = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70),
    (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32),
)

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
    "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
    "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)


def voc_palette(num_colors=256):
    """The PASCAL VOC colour map (bit-interleaved), `(num_colors, 3)` uint8."""
    palette = np.zeros((num_colors, 3), np.uint8)
    for index in range(num_colors):
        c, r, g, b = index, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette[index] = (r, g, b)
    return palette


def cityscapes_label_map():
    """A 256-entry lookup table labelId -> trainId (255 for unused ids)."""
    table = np.full(256, IGNORE_LABEL, np.uint8)
    for train_id, label_id in enumerate(CITYSCAPES_EVAL_IDS):
        table[label_id] = train_id
    return table


def palette_for(dataset, num_classes):
    """`(num_classes, 3)` uint8 colours for `dataset` (VOC colours otherwise)."""
    if dataset == "cityscapes":
        return np.asarray(CITYSCAPES_PALETTE, np.uint8)
    rng = np.random.default_rng(0)
    palette = voc_palette()
    if num_classes > 256:
        palette = rng.integers(0, 256, (num_classes, 3), dtype=np.uint8)
    return palette[:num_classes]


def class_names_for(dataset, num_classes):
    names = {
        "synthetic": SYNTHETIC_CLASSES,
        "synthetic_context": CONTEXT_CLASS_NAMES,
        "synthetic_marker": MARKER_CLASS_NAMES,
        "cityscapes": CITYSCAPES_CLASSES,
        "pascal_voc": VOC_CLASSES,
    }.get(dataset)
    if names is None or len(names) != num_classes:
        return tuple(f"class_{i}" for i in range(num_classes))
    return names


def class_names_of(data):
    """The class names of a `DataConfig`: its own, else its dataset's."""
    return data.class_names or class_names_for(data.name, data.num_classes)
