import numpy as np
import pytest

from danet_tf.deploy.inference import Segmenter, window_grid
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
    np.testing.assert_allclose(Segmenter(pointwise_logits).scores(image), expected, rtol=2e-6)


@pytest.mark.parametrize("crop, stride_rate", [(16, 2 / 3), (20, 0.5), (13, 1.0)])
def test_sliding_windows_reassemble_the_whole_image(crop, stride_rate):
    image = _image()
    whole = Segmenter(pointwise_logits).scores(image)
    windows = Segmenter(pointwise_logits, crop_size=crop, stride_rate=stride_rate).scores(image)
    np.testing.assert_allclose(windows, whole, rtol=2e-6)


def test_window_covering_the_whole_image_equals_whole_image_with_a_real_model():
    from danet_tf import DANet

    model = DANet(3, backbone="resnet18")
    model.set_gammas(pam=0.5, cam=0.5)
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
    np.testing.assert_allclose(Segmenter(asymmetric, flip=True).scores(image), expected, rtol=2e-6)


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


def _official_multi_eval(logits_fn, image, crop, scales, flip, base_size, stride_rate=2 / 3):
    """The official `MultiEvalModule` (`danet_tf.testing.official_eval`) in
    float64 around a NumPy NHWC logits function. It resizes as `Segmenter`
    does (`resize_bilinear`, here in float64), so that only the procedure is
    compared: float32 resize weights move large scores' neighbours by ~1e-4."""
    import torch

    from danet_tf.models.preprocessing import BLACK
    from danet_tf.models.resize import resize_bilinear
    from danet_tf.testing.official_eval import multi_eval

    def resize(nchw, h, w):
        nhwc = nchw.permute(0, 2, 3, 1).numpy()
        return torch.from_numpy(np.asarray(resize_bilinear(nhwc, (h, w), True),
                                           np.float64)).permute(0, 3, 1, 2)

    def model(nchw):
        nhwc = nchw.permute(0, 2, 3, 1).numpy().astype(np.float32)
        return torch.from_numpy(np.asarray(logits_fn(nhwc), np.float64)).permute(0, 3, 1, 2)

    x = torch.from_numpy(np.asarray(normalize(image), np.float64)[None]).permute(0, 3, 1, 2)
    scores = multi_eval(model, x, crop, scales, flip, base_size, BLACK, stride_rate, resize)
    return scores.permute(0, 2, 3, 1).numpy()[0]


@pytest.mark.parametrize("batch_size", [2, 3, 8])
def test_batched_windows_equal_the_official_one_window_loop(batch_size):
    """Scales that go below, across and above the crop; windows of a row that
    end short; flip. Batching and float32 fusion change nothing visible."""
    image = _image(45, 70)

    def asymmetric(x):
        return pointwise_logits(x) + np.linspace(0, 1, x.shape[2])[None, None, :, None]

    args = dict(crop=32, scales=(0.4, 0.75, 1.0, 1.25), flip=True, base_size=70)
    expected = _official_multi_eval(asymmetric, image, **args)
    segmenter = Segmenter(asymmetric, crop_size=32, scales=args["scales"], flip=True,
                          base_size=70, batch_size=batch_size)
    np.testing.assert_allclose(segmenter.scores(image), expected, rtol=2e-5)


def test_batches_stay_bounded_and_a_too_small_batch_is_refused():
    sizes = []

    def record(x):
        sizes.append(x.shape[0])
        return pointwise_logits(x)

    Segmenter(record, crop_size=16, flip=True, batch_size=4).scores(_image(40, 60))
    assert max(sizes) == 4 and sum(sizes) == 2 * len(window_grid(40, 60, 16, 10))
    with pytest.raises(ValueError, match="batch_size must be at least 2"):
        Segmenter(record, flip=True, batch_size=1)


def _official_pad_image(img, mean, std, crop_size):
    """PyTorch-Encoding's `pad_image` (NCHW), written out in NumPy."""
    b, c, h, w = img.shape
    padh = crop_size - h if h < crop_size else 0
    padw = crop_size - w if w < crop_size else 0
    pad_values = -np.array(mean) / np.array(std)
    out = np.empty((b, c, h + padh, w + padw), img.dtype)
    for i in range(c):
        out[:, i] = np.pad(img[:, i], ((0, 0), (0, padh), (0, padw)),
                           constant_values=pad_values[i])
    return out


def test_windows_are_padded_with_black_as_the_official_pad_image():
    from danet_tf.models.preprocessing import IMAGENET_MEAN, IMAGENET_STD

    seen = []

    def record(window):
        seen.append(window)
        return np.zeros((*window.shape[:3], 2), np.float32)

    image = _image(10, 12)
    Segmenter(record, crop_size=16).scores(image)
    x = np.asarray(normalize(image), np.float32)[None]
    expected = _official_pad_image(x.transpose(0, 3, 1, 2), IMAGENET_MEAN, IMAGENET_STD, 16)
    np.testing.assert_array_equal(seen[0], expected.transpose(0, 2, 3, 1))
