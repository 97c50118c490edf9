import numpy as np
import pytest

from danet_tf.models.losses import SegmentationCrossEntropy


def _reference_ce(labels, logits, ignore=255):
    logits = logits.astype(np.float64)
    log_probs = logits - logits.max(-1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
    valid = labels != ignore
    picked = np.take_along_axis(log_probs, np.where(valid, labels, 0)[..., None], -1)[..., 0]
    return -picked, valid


def test_matches_torch_cross_entropy_with_ignore_index():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 5, 6, 4)).astype("float32") * 3
    labels = rng.integers(0, 4, (2, 5, 6))
    labels[0, :2] = 255
    ce, valid = _reference_ce(labels, logits)
    expected = ce[valid].mean()
    loss = SegmentationCrossEntropy()(labels, logits)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


def test_float16_logits_are_computed_in_float32():
    logits = np.zeros((1, 2, 2, 3), "float16")
    logits[..., 0] = 60000.0
    labels = np.ones((1, 2, 2), "int32")
    loss = SegmentationCrossEntropy()(labels, logits)
    assert np.isfinite(float(loss))
    np.testing.assert_allclose(float(loss), 60000.0, rtol=1e-3)


def test_all_ignored_gives_zero_not_nan():
    loss = SegmentationCrossEntropy()(np.full((1, 2, 2), 255), np.zeros((1, 2, 2, 3), "float32"))
    assert float(loss) == 0.0


@pytest.mark.parametrize("min_kept", [3, 40])
def test_ohem_keeps_hard_pixels(min_kept):
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(1, 6, 8, 3)).astype("float32") * 4
    labels = rng.integers(0, 3, (1, 6, 8))
    labels[0, 0] = 255
    ce, valid = _reference_ce(labels, logits)
    prob = np.exp(-ce)
    sorted_probs = np.sort(prob[valid])
    threshold = max(sorted_probs[min(min_kept, valid.sum()) - 1], 0.7)
    keep = valid & (prob <= threshold)
    expected = ce[keep].mean()
    loss = SegmentationCrossEntropy(ohem=True, ohem_threshold=0.7, ohem_min_kept=min_kept)
    np.testing.assert_allclose(float(loss(labels, logits)), expected, rtol=1e-5)


def test_config_round_trip():
    loss = SegmentationCrossEntropy(ohem=True, ohem_min_kept=7)
    assert SegmentationCrossEntropy.from_config(loss.get_config()).get_config() == loss.get_config()


def test_equals_keras_sparse_crossentropy_with_ignore_class():
    """Why the class exists: Keras' built-in gives the same mean over labelled
    pixels (checked here), but has no OHEM and keeps float16 logits in float16."""
    import keras

    rng = np.random.default_rng(2)
    logits = rng.normal(size=(2, 5, 6, 4)).astype("float32") * 3
    labels = rng.integers(0, 4, (2, 5, 6))
    labels[1, 3:] = 255
    builtin = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255)
    np.testing.assert_allclose(float(SegmentationCrossEntropy()(labels, logits)),
                               float(builtin(labels, logits)), rtol=1e-5)
