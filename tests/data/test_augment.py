import numpy as np
import pytest
import tensorflow as tf

from danet_tf.data import augment
from danet_tf.models.preprocessing import IMAGENET_MEAN, IMAGENET_STD


def _example(h=40, w=56, classes=(0, 3, 7)):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask = rng.choice(np.array(classes, np.uint8), (h, w))
    mask[:5, :5] = 255
    return image, mask


def test_normalize_formula():
    image = np.array([[[0, 128, 255]]], np.uint8)
    expected = (image / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(augment.normalize(image), expected, rtol=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_train_transform_shapes_values_and_mask_not_interpolated(seed):
    image, mask = _example()
    out_image, out_mask = augment.train_transform(
        image, mask, tf.constant([seed, 7], tf.int64), crop_size=(64, 48),
        scale_range=(0.5, 2.0), jitter=True,
    )
    assert out_image.shape == (64, 48, 3) and out_image.dtype == tf.float32
    assert out_mask.shape == (64, 48) and out_mask.dtype == tf.int32
    assert set(np.unique(out_mask)) <= {0, 3, 7, 255}
    lo = (0 - max(IMAGENET_MEAN)) / min(IMAGENET_STD)
    hi = (1 - min(IMAGENET_MEAN)) / min(IMAGENET_STD)
    assert (lo - 1e-5 <= float(tf.reduce_min(out_image))
            <= float(tf.reduce_max(out_image)) <= hi + 1e-5)


def test_padding_is_ignore_label_and_black():
    image, mask = _example(10, 12)
    padded_image, padded_mask = augment.pad_to_size(tf.cast(image, tf.float32), mask, (16, 20))
    assert padded_mask.shape == (16, 20)
    assert np.all(padded_mask.numpy()[10:] == 255) and np.all(padded_mask.numpy()[:, 12:] == 255)
    np.testing.assert_array_equal(padded_mask.numpy()[:10, :12], mask)
    # The official code pads the uint8 image with 0 (black) before normalising.
    assert np.all(padded_image.numpy()[10:] == 0.0)


def test_training_crop_pads_with_black_after_normalisation():
    """In a normalised crop the padding is black, `-mean / std`, not the mean (0)."""
    image, mask = _example(20, 20, classes=(1,))
    out_image, out_mask = augment.train_transform(
        image, mask, tf.constant([0, 0], tf.int64), crop_size=(64, 64), scale_range=(0.5, 0.5),
        flip=False,
    )
    black = -np.array(IMAGENET_MEAN) / np.array(IMAGENET_STD)
    # The image is scaled to 10x10 and sits top-left in the 64x64 crop.
    padded = np.ones((64, 64), bool)
    padded[:10, :10] = False
    assert np.all(out_mask.numpy()[padded] == 255)
    np.testing.assert_allclose(out_image.numpy()[padded], np.broadcast_to(black, (padded.sum(), 3)),
                               rtol=1e-6)


def test_small_scale_pads_with_ignore():
    image, mask = _example(20, 20, classes=(1,))
    _, out_mask = augment.train_transform(
        image, mask, tf.constant([0, 0], tf.int64), crop_size=(64, 64), scale_range=(0.5, 0.5),
        flip=False,
    )
    # A 10x10 image in a 64x64 crop: the rest is ignore.
    assert np.sum(out_mask.numpy() != 255) <= 100
    assert np.sum(out_mask.numpy() == 255) >= 64 * 64 - 100


def test_flip_moves_image_and_mask_together():
    image = np.zeros((8, 8, 3), np.uint8)
    image[:, :2] = 255
    mask = np.zeros((8, 8), np.uint8)
    mask[:, :2] = 1
    seen = set()
    for seed in range(12):
        out_image, out_mask = augment.train_transform(
            image, mask, tf.constant([seed, 1], tf.int64), crop_size=(8, 8), scale_range=(1.0, 1.0)
        )
        bright = out_image.numpy()[..., 0] > 0
        np.testing.assert_array_equal(bright, out_mask.numpy() == 1)
        seen.add(bool(out_mask.numpy()[0, 0] == 1))
    assert seen == {True, False}


def test_same_seed_same_output():
    image, mask = _example()
    seed = tf.constant([3, 4], tf.int64)
    a = augment.train_transform(image, mask, seed, crop_size=(32, 32), jitter=True)
    b = augment.train_transform(image, mask, seed, crop_size=(32, 32), jitter=True)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
