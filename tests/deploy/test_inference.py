import numpy as np
import pytest

from danet_tf.deploy.inference import Segmenter
from danet_tf.models.preprocessing import normalize

WEIGHTS = np.random.default_rng(0).normal(size=(3, 4))


def pointwise_logits(x):
    """A translation-equivariant stand-in model: logits = x W per pixel."""
    return np.asarray(x, np.float64) @ WEIGHTS


def _image(h=37, w=52):
    return np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_whole_image_scores_are_exp_logits():
    image = _image()
    expected = np.exp(pointwise_logits(np.asarray(normalize(image))))
    np.testing.assert_allclose(Segmenter(pointwise_logits).scores(image), expected, rtol=1e-6)


@pytest.mark.parametrize("crop, stride_rate", [(16, 2 / 3), (20, 0.5), (13, 1.0)])
def test_sliding_windows_reassemble_the_whole_image(crop, stride_rate):
    image = _image()
    whole = Segmenter(pointwise_logits).scores(image)
    windows = Segmenter(pointwise_logits, crop_size=crop, stride_rate=stride_rate).scores(image)
    np.testing.assert_allclose(windows, whole, rtol=1e-6)


def test_window_covering_the_whole_image_equals_whole_image_with_a_real_model():
    from danet_tf import DANet

    model = DANet(3, backbone="resnet18")
    head = model.get_layer("head")
    head.get_layer("sa").gamma.assign([0.5])
    head.get_layer("sc").gamma.assign([0.5])
    net = model.inference_model()
    image = _image(40, 40)
    whole = Segmenter(net).scores(image)
    window = Segmenter(net, crop_size=40).scores(image)
    np.testing.assert_allclose(window, whole, rtol=1e-5)


def test_flip_follows_the_official_fusion():
    image = _image()
    x = np.asarray(normalize(image))[None]

    def asymmetric(x):
        return pointwise_logits(x) + np.linspace(0, 1, x.shape[2])[None, None, :, None]

    expected = np.exp(asymmetric(x) + asymmetric(x[:, :, ::-1])[:, :, ::-1])[0]
    np.testing.assert_allclose(Segmenter(asymmetric, flip=True).scores(image), expected, rtol=1e-6)


def test_multi_scale_sums_resized_scores():
    image = _image(30, 40)
    scores = Segmenter(pointwise_logits, scales=(0.5, 1.0, 1.5)).scores(image)
    single = Segmenter(pointwise_logits).scores(image)
    assert scores.shape == (30, 40, 4)
    # Pointwise logits of a resized image, resized back, stay close to the
    # original-scale scores: the sum is about three times those.
    ratio = scores / single
    assert np.median(ratio) == pytest.approx(3.0, rel=0.1)
    assert Segmenter(pointwise_logits, scales=(0.5, 1.0, 1.5)).predict(image).dtype == np.int32
