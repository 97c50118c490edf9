import numpy as np
import pytest
import tensorflow as tf

from danet_tf.data.tfrecord import decode_example, encode_example, load_tfrecord, write_shards


def test_round_trip_with_model_garden_keys(tmp_path):
    rng = np.random.default_rng(0)
    examples = [
        (rng.integers(0, 256, (9 + i, 7, 3), dtype=np.uint8),
         rng.choice(np.array([0, 1, 255], np.uint8), (9 + i, 7)), f"ex{i}")
        for i in range(5)
    ]
    paths = write_shards(examples, str(tmp_path / "data" / "train"), num_shards=2)
    assert [p.rsplit("/", 1)[1] for p in paths] == [
        "train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"]
    decoded = sorted((m.shape[0], i.numpy(), m.numpy()) for i, m in
                     [(i, m) for i, m in load_tfrecord(str(tmp_path / "data" / "train-*"))])
    assert len(decoded) == 5
    for (image, mask, _), (_, got_image, got_mask) in zip(examples, decoded):
        np.testing.assert_array_equal(got_image, image)
        np.testing.assert_array_equal(got_mask, mask)
    parsed = tf.train.Example.FromString(encode_example(*examples[0][:2], "ex0"))
    keys = set(parsed.features.feature)
    assert {"image/encoded", "image/segmentation/class/encoded", "image/height",
            "image/width", "image/format", "image/segmentation/class/format"} <= keys


def test_size_mismatch_is_an_error():
    serialized = encode_example(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), np.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError, match="sizes differ"):
        decode_example(serialized)


def test_missing_shards_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="No TFRecord"):
        load_tfrecord(str(tmp_path / "nothing-*"))
