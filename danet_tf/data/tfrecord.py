"""TFRecord shards with TF Model Garden's segmentation keys.

Keys (as `official/vision/data/tfrecord_lib` writes them):
`image/encoded`, `image/format`, `image/height`, `image/width`,
`image/segmentation/class/encoded`, `image/segmentation/class/format`,
plus `image/source_id`. Masks are stored as single-channel PNGs.
"""

import io
import os

import numpy as np
import tensorflow as tf
from PIL import Image

FEATURES = {
    "image/encoded": tf.io.FixedLenFeature((), tf.string),
    "image/segmentation/class/encoded": tf.io.FixedLenFeature((), tf.string),
    "image/height": tf.io.FixedLenFeature((), tf.int64, default_value=-1),
    "image/width": tf.io.FixedLenFeature((), tf.int64, default_value=-1),
}


def _png_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _bytes(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int(value):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def encode_example(image, mask, source_id=""):
    """A serialized `tf.train.Example` from `(H, W, 3)` and `(H, W)` uint8 arrays."""
    height, width = mask.shape
    feature = {
        "image/encoded": _bytes(_png_bytes(np.asarray(image, np.uint8))),
        "image/format": _bytes(b"png"),
        "image/height": _int(height),
        "image/width": _int(width),
        "image/source_id": _bytes(source_id.encode()),
        "image/segmentation/class/encoded": _bytes(_png_bytes(np.asarray(mask, np.uint8))),
        "image/segmentation/class/format": _bytes(b"png"),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def decode_example(serialized):
    """`(image (H, W, 3) uint8, mask (H, W) uint8)` from one serialized example."""
    parsed = tf.io.parse_single_example(serialized, FEATURES)
    image = tf.io.decode_image(parsed["image/encoded"], channels=3, expand_animations=False)
    mask = tf.io.decode_png(parsed["image/segmentation/class/encoded"], channels=1)[..., 0]
    tf.debugging.assert_equal(
        tf.shape(image)[:2], tf.shape(mask),
        message="TFRecord example: image and mask sizes differ",
    )
    return image, mask


def load_tfrecord(file_pattern):
    """A dataset of `(image, mask)` from shards matching `file_pattern` (local or gs://)."""
    files = tf.io.gfile.glob(file_pattern)
    if not files:
        raise FileNotFoundError(f"No TFRecord files match {file_pattern!r}.")
    ds = tf.data.TFRecordDataset(sorted(files), num_parallel_reads=tf.data.AUTOTUNE)
    return ds.map(decode_example, num_parallel_calls=tf.data.AUTOTUNE)


def write_shards(examples, output_prefix, num_shards):
    """Writes `(image, mask, source_id)` tuples round-robin to `num_shards` files.

    Files are named `{prefix}-{i:05d}-of-{n:05d}.tfrecord`, each written to a
    temporary name first and renamed when complete.

    Returns:
        The list of written paths.
    """
    directory = os.path.dirname(output_prefix)
    if directory:
        tf.io.gfile.makedirs(directory)
    paths = [f"{output_prefix}-{i:05d}-of-{num_shards:05d}.tfrecord" for i in range(num_shards)]
    writers = [tf.io.TFRecordWriter(p + ".tmp") for p in paths]
    try:
        for index, (image, mask, source_id) in enumerate(examples):
            writers[index % num_shards].write(encode_example(image, mask, source_id))
    finally:
        for writer in writers:
            writer.close()
    for path in paths:
        tf.io.gfile.rename(path + ".tmp", path, overwrite=True)
    return paths
