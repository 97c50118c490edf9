import keras
import numpy as np
import pytest
from conftest import relative_error

from danet_tf.models.resize import ResizeLike, resize_bilinear


def torch_bilinear_align_corners(x, out_h, out_w):
    """PyTorch's upsample_bilinear2d with align_corners=True, pixel by pixel."""
    b, in_h, in_w, c = x.shape
    x = x.astype(np.float64)
    scale_h = (in_h - 1) / (out_h - 1) if out_h > 1 else 0.0
    scale_w = (in_w - 1) / (out_w - 1) if out_w > 1 else 0.0
    y = np.zeros((b, out_h, out_w, c))
    for i in range(out_h):
        h_src = i * scale_h
        h0 = int(np.floor(h_src))
        h1 = min(h0 + 1, in_h - 1)
        lh = h_src - h0
        for j in range(out_w):
            w_src = j * scale_w
            w0 = int(np.floor(w_src))
            w1 = min(w0 + 1, in_w - 1)
            lw = w_src - w0
            y[:, i, j] = (
                (1 - lh) * ((1 - lw) * x[:, h0, w0] + lw * x[:, h0, w1])
                + lh * ((1 - lw) * x[:, h1, w0] + lw * x[:, h1, w1])
            )
    return y


@pytest.mark.parametrize(
    "in_hw, out_hw", [((4, 5), (13, 17)), ((7, 3), (7, 3)), ((6, 8), (3, 5)), ((5, 5), (1, 1))]
)
def test_align_corners_matches_pytorch_formula(in_hw, out_hw):
    x = np.random.randn(2, *in_hw, 3).astype("float32")
    expected = torch_bilinear_align_corners(x, *out_hw)
    actual = resize_bilinear(x, out_hw, align_corners=True)
    assert actual.shape == expected.shape
    assert relative_error(actual, expected) <= 1e-6


def test_align_corners_keeps_corners():
    x = np.random.randn(1, 3, 4, 2).astype("float32")
    y = keras.ops.convert_to_numpy(resize_bilinear(x, (10, 11), align_corners=True))
    for (i, j), (a, b) in zip([(0, 0), (0, -1), (-1, 0), (-1, -1)],
                              [(0, 0), (0, -1), (-1, 0), (-1, -1)]):
        np.testing.assert_allclose(y[0, i, j], x[0, a, b], rtol=1e-6)


def test_half_pixel_mode_matches_keras_image_resize():
    # PyTorch align_corners=False == Keras/TF bilinear (half-pixel centres) when upsampling.
    x = np.random.randn(1, 5, 6, 4).astype("float32")
    expected = keras.ops.image.resize(x, (11, 15), interpolation="bilinear", antialias=False)
    assert relative_error(resize_bilinear(x, (11, 15), align_corners=False), expected) <= 1e-5


@pytest.mark.tensorflow
def test_resize_like_layer_with_dynamic_shapes():
    import tensorflow as tf

    layer = ResizeLike(align_corners=True)
    fn = tf.function(
        lambda x, ref: layer([x, ref]),
        input_signature=[
            tf.TensorSpec([None, None, None, 3]),
            tf.TensorSpec([None, None, None, 1]),
        ],
    )
    x = np.random.randn(1, 4, 6, 3).astype("float32")
    out = fn(x, np.zeros((1, 9, 21, 1), "float32"))
    assert out.shape == (1, 9, 21, 3)
    assert relative_error(out, torch_bilinear_align_corners(x, 9, 21)) <= 1e-6
    assert ResizeLike.from_config(layer.get_config()).align_corners is True


def test_resize_like_layer_on_this_backend():
    layer = ResizeLike(align_corners=True)
    x = np.random.randn(1, 4, 6, 3).astype("float32")
    out = layer([x, np.zeros((1, 9, 21, 1), "float32")])
    assert tuple(out.shape) == (1, 9, 21, 3)
    assert relative_error(out, torch_bilinear_align_corners(x, 9, 21)) <= 1e-6
