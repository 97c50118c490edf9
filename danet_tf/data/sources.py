"""Where examples come from: one entry per `data.source`, each able to check
its configuration without starting TensorFlow (`check`), to give the
`(image uint8 (H, W, 3), mask uint8 (H, W))` examples of a split (`load`), and
to count them when it can without reading them (`size`)."""

import dataclasses
import functools
import glob
import os

import numpy as np
import tensorflow as tf

from danet_tf.data import folder, synthetic
from danet_tf.data.tfds_source import load_tfds
from danet_tf.data.tfrecord import load_tfrecord
from danet_tf.models.losses import IGNORE_LABEL


def _is_good(image, mask, ok):
    return ok


def _drop_flag(image, mask, ok):
    return image, mask


# `data.on_bad_example`: stop at a bad file, or skip it and list it at the end.
ON_BAD_EXAMPLE = ("raise", "skip")


def _read_folder_pairs(pairs, data, skips, known_size=False):
    """Dataset of checked pairs read with Pillow (see `folder.read_pair`).

    With `on_bad_example="skip"` bad pairs are dropped; `known_size=True`
    (validation) checks every pair once up front, so that the dataset keeps
    a known cardinality (Keras then evaluates exactly the good images).
    """
    skip = data.on_bad_example == "skip"
    read = _pair_reader(data, skips)
    if skip and known_size:
        pairs = [pair for pair in pairs if read(*(p.encode() for p in pair))[2]]
        if not pairs:
            raise folder.BadExampleError(
                f"on_bad_example=skip left no readable pair of {len(skips)} (first: "
                f"{next(iter(skips.skipped.items()), ('', ''))[1]})")
    images, masks = zip(*pairs)
    ds = tf.data.Dataset.from_tensor_slices((list(images), list(masks)))
    ds = ds.map(lambda i, m: _read_in_graph(read, i, m), num_parallel_calls=tf.data.AUTOTUNE)
    if skip and not known_size:
        ds = ds.filter(_is_good)
    return ds.map(_drop_flag)


def _pair_reader(data, skips):
    """`read(image_path, mask_path) -> (image, mask, ok)` on encoded paths;
    a bad pair raises, or under `on_bad_example="skip"` is noted in `skips`
    and comes back empty with `ok=False`."""
    label_map = folder.label_map_for(data.source)
    if data.on_bad_example not in ON_BAD_EXAMPLE:
        raise ValueError(f"data.on_bad_example must be one of {', '.join(ON_BAD_EXAMPLE)}. "
                         f"Received: {data.on_bad_example!r}")

    def read(image_path, mask_path):
        image_path, mask_path = image_path.decode(), mask_path.decode()
        try:
            image, mask = folder.read_pair(image_path, mask_path, data.num_classes, label_map)
            return image, mask, True
        except folder.BadExampleError as err:
            if data.on_bad_example != "skip":
                raise
            skips.add(image_path, str(err))
            return np.zeros((0, 0, 3), np.uint8), np.zeros((0, 0), np.uint8), False

    return read


def _read_in_graph(read, image_path, mask_path):
    """`read` inside tf.data, with the shapes the map's consumers need."""
    image, mask, ok = tf.numpy_function(
        read, [image_path, mask_path], [tf.uint8, tf.uint8, tf.bool], stateful=False
    )
    image.set_shape([None, None, 3])
    mask.set_shape([None, None])
    return image, mask, ok


def assert_mask_values(image, mask, num_classes, source):
    """In-graph check for sources not read by `folder.read_pair`."""
    valid = tf.logical_or(mask < num_classes, mask == IGNORE_LABEL)
    tf.debugging.Assert(
        tf.reduce_all(valid),
        [f"{source}: mask values must be < num_classes={num_classes} or {IGNORE_LABEL}; found",
         tf.reduce_max(tf.boolean_mask(mask, tf.logical_not(valid)))],
    )
    return image, mask


def synthetic_image_shape(size):
    """`data.synthetic_image_size` (an int, or `[height, width]`) as `(height, width)`."""
    shape = (size, size) if isinstance(size, int) else tuple(size)
    if len(shape) != 2 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ValueError("data.synthetic_image_size: expected a positive integer or "
                         f"[height, width]. Received: {size!r}")
    return shape


@functools.lru_cache(maxsize=4)
def _synthetic_arrays(num_images, seed, shape, task):
    return synthetic.make_split(num_images, seed, *shape, task=task)


def _split_name(data, split):
    return data.train_split if split == "train" else data.val_split


def _check_synthetic(data):
    synthetic_image_shape(data.synthetic_image_size)
    names = synthetic.TASK_CLASS_NAMES.get(data.synthetic_task)
    if names is None:
        raise ValueError(f"data.synthetic_task must be one of {synthetic.TASKS}. "
                         f"Received: {data.synthetic_task!r}")
    if data.synthetic_task != "textures" and data.num_classes != len(names):
        raise ValueError(f"data.num_classes: the {data.synthetic_task} task has {len(names)} "
                         f"classes ({', '.join(names)}). Received: {data.num_classes} "
                         f"(use --preset {data.synthetic_task})")


def _synthetic_examples(data, split, skips):
    _check_synthetic(data)
    train = split == data.train_split
    count = data.synthetic_train_size if train else data.synthetic_val_size
    # Distinct seeds per split: the val scenes are never seen in training.
    images, masks = _synthetic_arrays(count, data.seed * 2 + (0 if train else 1),
                                      synthetic_image_shape(data.synthetic_image_size),
                                      data.synthetic_task)
    return tf.data.Dataset.from_tensor_slices((images, masks))


def _synthetic_size(data, split):
    return data.synthetic_train_size if split == data.train_split else data.synthetic_val_size


def _folder_pairs(data, split):
    return folder.list_pairs(data.source, data.root, _split_name(data, split), data.image_dir,
                             data.mask_dir)


def _check_folder(data):
    for split in ("train", "val"):
        _folder_pairs(data, split)


def _folder_examples(data, split, skips):
    skips = skips if skips is not None else folder.SkipCounter()
    return _read_folder_pairs(_folder_pairs(data, split), data, skips,
                              known_size=split != "train")


def _folder_size(data, split):
    try:
        return len(_folder_pairs(data, split))
    except (OSError, ValueError):
        return None  # reading the split reports the problem with its file name


def _checked(ds, data):
    return ds.map(functools.partial(assert_mask_values, num_classes=data.num_classes,
                                    source=data.source))


def _tfds_examples(data, split, skips):
    return _checked(load_tfds(data.tfds_name, split, data.data_dir, data.manual_dir,
                              data.download), data)


def _check_tfrecord(data):
    for name in ("train_pattern", "val_pattern"):
        pattern = getattr(data, name)
        if not pattern:
            raise ValueError(f"data.{name}: the tfrecord source needs a file pattern.")
        if "://" not in pattern and not glob.glob(os.path.expanduser(pattern)):
            raise FileNotFoundError(f"data.{name}: no TFRecord files match {pattern!r}.")


def _tfrecord_examples(data, split, skips):
    return _checked(load_tfrecord(data.train_pattern if split == "train" else data.val_pattern),
                    data)


@dataclasses.dataclass(frozen=True)
class Source:
    check: object  # (data) -> None; raises on a bad configuration
    load: object  # (data, split, skips) -> tf.data.Dataset of examples
    size: object = None  # (data, split) -> int or None


def _no_check(data):
    pass


SOURCES = {
    "synthetic": Source(_check_synthetic, _synthetic_examples, _synthetic_size),
    **{layout: Source(_check_folder, _folder_examples, _folder_size)
       for layout in ("folder", "cityscapes", "pascal_voc")},
    "tfds": Source(_no_check, _tfds_examples),  # a missing tfds dataset: reading says so
    "tfrecord": Source(_check_tfrecord, _tfrecord_examples),
}


def source_of(data):
    if data.source not in SOURCES:
        raise ValueError(f"data.source must be one of {', '.join(SOURCES)}. "
                         f"Received: {data.source!r}")
    return SOURCES[data.source]


def check_data(data):
    """Checks the data configuration (paths, file lists, patterns) without
    reading an image or starting TensorFlow's runtime (a multi-worker strategy
    must be created first), so a run reports a missing directory before it
    touches anything."""
    source_of(data).check(data)


def load_examples(data, split, skips=None):
    """`(image uint8 (H, W, 3), mask uint8 (H, W))` examples of a split.

    Args:
        data: `DataConfig`.
        split: `"train"` or `"val"`.
        skips: `folder.SkipCounter` receiving the skipped files when
            `data.on_bad_example == "skip"`.
    """
    return source_of(data).load(data, split, skips)


def split_size(data, split):
    """Number of examples of a split, or `None` when only reading it would tell."""
    source = source_of(data)
    if source.size is not None:
        return source.size(data, split)
    count = int(load_examples(data, split).cardinality())
    return count if count >= 0 else None
