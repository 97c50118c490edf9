"""tf.data input pipelines: a source, then train or eval transforms, then batches.

`load_examples(data, split)` gives `(image (H, W, 3) uint8, mask (H, W) uint8)`
from any source; `build_train_dataset` / `build_eval_dataset` turn it into
batches of `(images (B, h, w, 3) float32, masks (B, h, w) int32)`.
"""

import functools

import tensorflow as tf

from danet_tf.data import augment
from danet_tf.data.sources import load_examples


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
