"""tf.data input pipelines: a source, then train or eval transforms, then batches.

`load_examples(data, split)` gives `(image (H, W, 3) uint8, mask (H, W) uint8)`
from any source; `build_train_dataset` / `build_eval_dataset` turn it into
batches of `(images (B, h, w, 3) float32, masks (B, h, w) int32)`.
"""

import functools

import numpy as np
import tensorflow as tf

from danet_tf.data import augment, folder, synthetic
from danet_tf.data.tfds_source import load_tfds
from danet_tf.data.tfrecord import load_tfrecord
from danet_tf.models.losses import IGNORE_LABEL

FOLDER_LAYOUTS = ("folder", "cityscapes", "pascal_voc")


def _is_good(image, mask, ok):
    return ok


def _drop_flag(image, mask, ok):
    return image, mask


def _read_folder_pairs(pairs, data, skips, known_size=False):
    """Dataset of checked pairs read with Pillow (see `folder.read_pair`).

    With `on_bad_example="skip"` bad pairs are dropped; `known_size=True`
    (validation) checks every pair once up front, so that the dataset keeps
    a known cardinality (Keras then evaluates exactly the good images).
    """
    label_map = folder.label_map_for(data.source)
    skip = data.on_bad_example == "skip"
    if data.on_bad_example not in ("raise", "skip"):
        raise ValueError(
            f"data.on_bad_example must be raise or skip. Received: {data.on_bad_example!r}"
        )

    def read(image_path, mask_path):
        image_path, mask_path = image_path.decode(), mask_path.decode()
        try:
            image, mask = folder.read_pair(image_path, mask_path, data.num_classes, label_map)
            return image, mask, True
        except folder.BadExampleError as err:
            if not skip:
                raise
            skips.add(image_path, str(err))
            return np.zeros((0, 0, 3), np.uint8), np.zeros((0, 0), np.uint8), False

    def read_tf(image_path, mask_path):
        image, mask, ok = tf.numpy_function(
            read, [image_path, mask_path], [tf.uint8, tf.uint8, tf.bool], stateful=False
        )
        image.set_shape([None, None, 3])
        mask.set_shape([None, None])
        return image, mask, ok

    if skip and known_size:
        pairs = [pair for pair in pairs if read(*(p.encode() for p in pair))[2]]
        if not pairs:
            raise folder.BadExampleError(
                f"on_bad_example=skip left no readable pair of {len(skips)} (first: "
                f"{next(iter(skips.skipped.items()), ('', ''))[1]})")
    images, masks = zip(*pairs)
    ds = tf.data.Dataset.from_tensor_slices((list(images), list(masks)))
    ds = ds.map(read_tf, num_parallel_calls=tf.data.AUTOTUNE)
    if skip and not known_size:
        ds = ds.filter(_is_good)
    return ds.map(_drop_flag)


def check_mask_values(image, mask, num_classes, source):
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


def load_examples(data, split, skips=None):
    """`(image uint8 (H, W, 3), mask uint8 (H, W))` examples of a split.

    Args:
        data: `DataConfig`.
        split: `"train"` or `"val"`.
        skips: `folder.SkipCounter` receiving the skipped files when
            `data.on_bad_example == "skip"`.
    """
    if data.source == "synthetic":
        if data.synthetic_task == "context" and data.num_classes != len(
                synthetic.CONTEXT_CLASS_NAMES):
            raise ValueError("data.num_classes: the context task has 3 classes (background, "
                             f"twin, lone). Received: {data.num_classes} (use --preset context)")
        train = split == data.train_split
        count = data.synthetic_train_size if train else data.synthetic_val_size
        # Distinct seeds per split: the val scenes are never seen in training.
        images, masks = _synthetic_arrays(count, data.seed * 2 + (0 if train else 1),
                                          synthetic_image_shape(data.synthetic_image_size),
                                          data.synthetic_task)
        return tf.data.Dataset.from_tensor_slices((images, masks))
    if data.source in FOLDER_LAYOUTS:
        split_name = data.train_split if split == "train" else data.val_split
        pairs = folder.list_pairs(data.source, data.root, split_name, data.image_dir, data.mask_dir)
        skips = skips if skips is not None else folder.SkipCounter()
        return _read_folder_pairs(pairs, data, skips, known_size=split != "train")
    if data.source == "tfds":
        ds = load_tfds(data.tfds_name, split, data.data_dir, data.manual_dir, data.download)
    elif data.source == "tfrecord":
        pattern = data.train_pattern if split == "train" else data.val_pattern
        ds = load_tfrecord(pattern)
    else:
        raise ValueError(
            f"data.source must be synthetic, folder, cityscapes, pascal_voc, tfds or tfrecord. "
            f"Received: {data.source!r}"
        )
    check = functools.partial(check_mask_values, num_classes=data.num_classes, source=data.source)
    return ds.map(check)


def check_data(data):
    """Opens both splits as training will (paths, file lists, patterns,
    prepared tfds data), so a missing directory is reported before a run
    touches anything; reads no image."""
    for split in ("train", "val"):
        load_examples(data, split)


def split_size(data, split):
    """Number of examples of a split, or `None` when only reading it would tell."""
    if data.source == "synthetic":
        return data.synthetic_train_size if split == "train" else data.synthetic_val_size
    if data.source in FOLDER_LAYOUTS:
        split_name = data.train_split if split == "train" else data.val_split
        try:
            return len(folder.list_pairs(data.source, data.root, split_name, data.image_dir,
                                         data.mask_dir))
        except (OSError, ValueError):
            return None  # reading the split reports the problem with its file name
    count = int(load_examples(data, split).cardinality())
    return count if count >= 0 else None


def endless_shuffle(examples, buffer_size, seed):
    """`examples` repeated without end, then shuffled with a fixed seed.

    Every iterator of the result yields the same stream. With
    `shuffle(reshuffle_each_iteration=True).repeat()` it would not: all
    iterators of a dataset draw each pass's order from one shared seed
    generator, so a second iterator's first batch would depend on how many
    passes an earlier one had prefetched when it was dropped (Keras `fit` on
    JAX takes one batch from an iterator of its own to build the model).
    Shuffling after `repeat` lets the buffer mix neighbouring passes.
    """
    return examples.repeat().shuffle(buffer_size, seed=seed, reshuffle_each_iteration=False)


def build_train_dataset(data, seed_offset=0, skips=None, batch_size=None):
    """Infinite, shuffled, augmented batches `(B, crop_h, crop_w, 3)`, `(B, crop_h, crop_w)`.

    Args:
        data: `DataConfig`.
        seed_offset: int added to `data.seed` (the epoch a resumed run starts
            at, so it does not replay the first epoch's order).
        batch_size: overrides `data.batch_size` (e.g. a per-worker batch).
    """
    seed = data.seed + seed_offset
    crop = tuple(int(c) for c in data.crop_size)
    transform = functools.partial(
        augment.train_transform, crop_size=crop, scale_range=tuple(data.scale_range),
        base_size=data.base_size, flip=data.flip, jitter=data.jitter,
    )
    ds = endless_shuffle(load_examples(data, "train", skips), data.shuffle_buffer, seed)
    seeds = tf.data.Dataset.random(seed=seed).batch(2)
    ds = tf.data.Dataset.zip((ds, seeds))
    def transform_example(example, example_seed):
        return transform(*example, example_seed)

    ds = ds.map(transform_example, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size or data.batch_size, drop_remainder=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def build_eval_dataset(data, skips=None, batch_size=None):
    """Full-resolution, normalised batches in file order (no augmentation)."""
    ds = load_examples(data, "val", skips)
    ds = ds.map(augment.eval_transform, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size or data.eval_batch_size).prefetch(tf.data.AUTOTUNE)


def with_output_keys(ds, keys):
    """`(images, masks)` -> `(images, {key: masks})` for a multi-output model."""
    def one_label_per_output(images, masks):
        return images, dict.fromkeys(keys, masks)

    return ds.map(one_label_per_output)
