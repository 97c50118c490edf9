"""The heads of `danet_tf/models/head.py` and `context_heads.py` against NumPy float64 references of
the official `encoding` heads (PSPNet pyramid pooling, DeepLabV3 ASPP) and
their parameter counts written out."""

import math

import keras
import numpy as np
import pytest
from conftest import to_numpy
from helpers import infer

from danet_tf import DANet
from danet_tf.models.context_heads import aspp_head, fcn_head, psp_head
from danet_tf.models.head import (
    HEADS,
    attention_branch_head,
    attention_layers,
    segmentation_head,
)
from danet_tf.models.pooling import AdaptiveAveragePooling

EPS = 1e-5


def _randomise_batch_norm(model, rng):
    """Random BN statistics and affine weights, so inference-mode BN matters."""
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.2, c),
                               rng.normal(0, 0.2, c), rng.uniform(0.5, 1.5, c)])


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def _conv_bn_relu_ref(x, block, dilation=1):
    """NumPy float64 `relu(bn(conv(x)))` of a `conv_bn_relu` Sequential, with
    PyTorch's zero padding `dilation * (k - 1) / 2`."""
    kernel = to_numpy(block.get_layer("conv").kernel).astype(np.float64)
    gamma, beta, mean, var = (to_numpy(w).astype(np.float64)
                              for w in block.get_layer("bn").weights)
    k = kernel.shape[0]
    pad = dilation * (k - 1) // 2
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    h, w = x.shape[1:3]
    out = np.zeros(x.shape[:3] + (kernel.shape[-1],))
    for dy in range(k):
        for dx in range(k):
            window = padded[:, dy * dilation:dy * dilation + h, dx * dilation:dx * dilation + w]
            out += window @ kernel[dy, dx]
    return np.maximum((out - mean) / np.sqrt(var + EPS) * gamma + beta, 0.0)


def _adaptive_average_pool_ref(x, bins):
    """PyTorch's `adaptive_avg_pool2d` bins: `[floor(i H / b), ceil((i + 1) H / b))`."""
    batch, height, width, channels = x.shape
    out = np.zeros((batch, bins, bins, channels))
    for i in range(bins):
        h0, h1 = (i * height) // bins, math.ceil((i + 1) * height / bins)
        for j in range(bins):
            w0, w1 = (j * width) // bins, math.ceil((j + 1) * width / bins)
            out[:, i, j] = x[:, h0:h1, w0:w1].mean(axis=(1, 2))
    return out


def _resize_align_corners_ref(x, height, width):
    """Bilinear, `align_corners=True` (PyTorch), separable, float64."""
    def axis(x, out_size, ax):
        in_size = x.shape[ax]
        src = (np.arange(out_size) * (in_size - 1) / (out_size - 1) if out_size > 1
               else np.zeros(1))
        i0 = np.clip(np.floor(src).astype(int), 0, in_size - 1)
        i1 = np.minimum(i0 + 1, in_size - 1)
        frac = (src - i0).reshape([-1 if a == ax else 1 for a in range(x.ndim)])
        return np.take(x, i0, ax) * (1 - frac) + np.take(x, i1, ax) * frac
    return axis(axis(x, height, 1), width, 2)


@pytest.fixture(scope="module")
def features():
    return np.random.default_rng(1).normal(size=(2, 13, 17, 32))


def test_psp_pyramid_equals_the_official_formula(features):
    head = psp_head(32, 3)
    _randomise_batch_norm(head, np.random.default_rng(2))
    pyramid = keras.Model(head.input, head.get_layer("pyramid").output)
    got = to_numpy(pyramid(features.astype("float32"), training=False))
    expected = [features]
    for bins in (1, 2, 3, 6):
        pooled = _adaptive_average_pool_ref(features, bins)
        branch = _conv_bn_relu_ref(pooled, head.get_layer(f"pool{bins}_conv"))
        expected.append(_resize_align_corners_ref(branch, 13, 17))
    expected = np.concatenate(expected, -1)
    assert got.shape == (2, 13, 17, 32 + 4 * 8)
    np.testing.assert_allclose(got, expected, atol=1e-4 * np.abs(expected).max())


def test_aspp_branches_equal_the_official_formula(features):
    head = aspp_head(32, 3, rates=(2, 5, 12))
    _randomise_batch_norm(head, np.random.default_rng(3))
    x = features.astype("float32")
    for name, rate in (("b0", 1), ("b1", 2), ("b2", 5), ("b3", 12)):
        got = to_numpy(head.get_layer(name)(x, training=False))
        expected = _conv_bn_relu_ref(features, head.get_layer(name), dilation=rate)
        assert got.shape == (2, 13, 17, 4), name
        np.testing.assert_allclose(got, expected, atol=1e-4 * np.abs(expected).max(), err_msg=name)
    pooled = keras.Model(head.input, head.get_layer("b4_up").output)
    expected = _conv_bn_relu_ref(features.mean(axis=(1, 2), keepdims=True), head.get_layer("b4"))
    np.testing.assert_allclose(to_numpy(pooled(x, training=False)),
                               np.broadcast_to(expected, (2, 13, 17, 4)), atol=1e-5)


def _params(model):
    return sum(int(np.prod(w.shape)) for w in model.weights)


@pytest.mark.backend_independent
@pytest.mark.parametrize("channels, classes", [(512, 3)])
def test_parameter_counts_written_out(channels, classes):
    c, k = channels, classes
    q, e = c // 4, c // 8
    bn = 4  # gamma, beta, moving mean, moving variance per channel
    classifier = q * k + k
    assert _params(fcn_head(c, k)) == 9 * c * q + bn * q + classifier
    assert _params(psp_head(c, k)) == (4 * (c * q + bn * q) + 9 * 2 * c * q + bn * q
                                       + classifier)
    assert _params(aspp_head(c, k)) == (2 * (c * e + bn * e) + 3 * (9 * c * e + bn * e)
                                        + 5 * e * e + bn * e + 9 * e * e + bn * e + e * k + k)
    # PAM alone and CAM alone are exactly DANet's two branches: together
    # with DANet's fused classifier (conv8) they are the whole DANet head.
    danet = segmentation_head("danet", c, k)
    pam, cam = attention_branch_head(c, k, "pam"), attention_branch_head(c, k, "cam")
    assert _params(danet) == _params(pam) + _params(cam) + classifier
    assert {layer.name for layer in pam.layers} <= {layer.name for layer in danet.layers}
    assert {layer.name for layer in cam.layers} <= {layer.name for layer in danet.layers}


@pytest.mark.parametrize("head", [h for h in HEADS if h != "danet"])  # danet: test_danet.py
def test_every_head_builds_the_model_contract(head):
    model = DANet(num_classes=4, backbone="resnet18", head=head)
    outputs = infer(model, np.zeros((1, 40, 56, 3), "float32"))
    assert sorted(outputs) == ["logits"]
    assert tuple(outputs["logits"].shape) == (1, 40, 56, 4)
    rebuilt = DANet.from_config(model.get_config())
    assert rebuilt.get_config()["head"] == head
    assert rebuilt.count_params() == model.count_params()


@pytest.mark.backend_independent
def test_unknown_head_is_refused():
    with pytest.raises(ValueError, match="head must be one of"):
        DANet(num_classes=3, backbone="resnet18", head="unet")


@pytest.mark.parametrize("height, width", [(13, 17), (4, 4), (2, 5)])
def test_adaptive_pooling_equals_pytorch_bins_even_where_bins_exceed_the_size(height, width):
    """Keras' `AdaptiveAveragePooling2D` fails on 6 bins over a 4x4 map;
    PyTorch (and this layer) let the bins overlap."""
    x = np.random.default_rng(4).normal(size=(2, height, width, 3))
    for bins in (1, 2, 3, 6):
        got = to_numpy(AdaptiveAveragePooling(bins)(x.astype("float32")))
        np.testing.assert_allclose(got, _adaptive_average_pool_ref(x, bins), atol=1e-5)


def test_pam_and_cam_heads_are_danet_branches_wired_alike(features):
    """DANet's weights copied by layer name into the single-module heads give
    exactly DANet's position and channel logits."""
    rng = np.random.default_rng(5)
    danet = segmentation_head("danet", 32, 3)
    _randomise_batch_norm(danet, rng)
    layers = attention_layers(danet)
    layers["pam"].gamma.assign([0.7])
    layers["cam"].gamma.assign([-0.5])
    x = features.astype("float32")
    _, pam_logits, cam_logits = (to_numpy(o) for o in danet(x, training=False))
    for branch, expected in (("pam", pam_logits), ("cam", cam_logits)):
        head = attention_branch_head(32, 3, branch)
        for layer in head.layers[1:]:
            layer.set_weights(danet.get_layer(layer.name).get_weights())
        got = to_numpy(keras.tree.flatten(head(x, training=False))[0])
        np.testing.assert_allclose(got, expected, atol=1e-5 * np.abs(expected).max(),
                                   err_msg=branch)


@pytest.mark.backend_independent
@pytest.mark.parametrize("head", HEADS)
def test_head_variables_sit_under_the_head_scope(head):
    """The optimiser's 10x head learning rate selects variables by `head/`."""
    model = segmentation_head(head, 64, 3)
    assert model.weights and all(v.path.startswith("head/") for v in model.weights)


@pytest.mark.backend_independent
def test_a_config_saved_before_heads_existed_builds_danet():
    config = DANet(num_classes=3, backbone="resnet18").get_config()
    del config["head"]
    model = DANet.from_config(config)
    assert model.head_kind == "danet" and "pam_logits" in model.output
