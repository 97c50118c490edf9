"""tensorflow-datasets builders mapped to `(image uint8 (H, W, 3), mask uint8 (H, W))`.

Each entry names the builder, its image and mask features and how raw mask
values become class ids (255 = ignore):

- `cityscapes`: `cityscapes/semantic_segmentation`, prepared from a
  `manual_dir` holding `leftImg8bit_trainvaltest.zip` and
  `gtFine_trainvaltest.zip`; labelIds -> the 19 train ids.
- `scene_parse150` (ADE20K): class in the annotation's first channel,
  0 = "other" -> 255, 1..150 -> 0..149 (mmseg's `reduce_zero_label`).
- `oxford_iiit_pet`: trimap 1 (pet), 2 (background), 3 (border) -> 0, 1, 2.
"""

import dataclasses

import tensorflow as tf

from danet_tf.data.catalog import cityscapes_label_map
from danet_tf.models.losses import IGNORE_LABEL


def _reduce_zero_label(mask):
    return tf.where(mask == 0, tf.constant(IGNORE_LABEL, mask.dtype), mask - 1)


def _cityscapes_train_ids(mask):
    table = tf.constant(cityscapes_label_map())
    return tf.gather(table, tf.cast(mask, tf.int32))


@dataclasses.dataclass(frozen=True)
class TFDSSpec:
    builder: str
    image_key: str
    mask_key: str
    map_mask: object
    num_classes: int
    splits: dict


TFDS_SPECS = {
    "cityscapes": TFDSSpec(
        "cityscapes/semantic_segmentation", "image_left", "segmentation_label",
        _cityscapes_train_ids, 19, {"train": "train", "val": "validation"},
    ),
    "scene_parse150": TFDSSpec(
        "scene_parse150", "image", "annotation", _reduce_zero_label, 150,
        {"train": "train", "val": "validation"},
    ),
    "oxford_iiit_pet": TFDSSpec(
        "oxford_iiit_pet", "image", "segmentation_mask", lambda m: m - 1, 3,
        {"train": "train", "val": "test"},
    ),
}


def load_tfds(name, split, data_dir=None, manual_dir=None, download=False):
    """A dataset of `(image (H, W, 3) uint8, mask (H, W) uint8)` from tfds.

    Args:
        name: key of `TFDS_SPECS`.
        split: `"train"` or `"val"` (mapped to the builder's split names).
        data_dir: tfds data directory.
        manual_dir: directory of manually downloaded archives (Cityscapes).
        download: bool. Let tfds download and prepare; only on explicit request.
    """
    import tensorflow_datasets as tfds

    if name not in TFDS_SPECS:
        raise ValueError(f"Unknown tfds dataset {name!r}; expected one of {sorted(TFDS_SPECS)}.")
    spec = TFDS_SPECS[name]
    builder = tfds.builder(spec.builder, data_dir=data_dir)
    if download or manual_dir:
        config = tfds.download.DownloadConfig(manual_dir=manual_dir)
        builder.download_and_prepare(download_config=config)
    ds = builder.as_dataset(split=spec.splits.get(split, split), shuffle_files=False)

    def to_pair(example):
        mask = example[spec.mask_key][..., 0]
        return example[spec.image_key], tf.cast(spec.map_mask(mask), tf.uint8)

    return ds.map(to_pair, num_parallel_calls=tf.data.AUTOTUNE)


def tfds_num_classes(name):
    return TFDS_SPECS[name].num_classes


