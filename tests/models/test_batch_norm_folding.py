import keras
import numpy as np
import pytest
from conftest import to_numpy
from helpers import infer, randomize_batch_norms

from danet_tf import DANet, fold_batch_norm
from danet_tf.models.batch_norm_folding import conv_bn_pairs, folded_conv_weights


def _nested_layers(model):
    """Every layer of `model`, those of its nested models included."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _nested_layers(layer)


def test_folded_conv_weights_match_the_formula_in_float64():
    rng = np.random.default_rng(0)
    model = keras.Sequential([
        keras.Input((5, 6, 4)),
        keras.layers.Conv2D(3, 1, use_bias=True),
        keras.layers.BatchNormalization(epsilon=1e-3),
    ])
    randomize_batch_norms(model, rng, min_variance=1e-3)  # epsilon matters
    (conv, bn), = conv_bn_pairs(model)
    folded = folded_conv_weights(conv, bn)

    x = rng.normal(size=(2, 5, 6, 4))
    weights = [to_numpy(v).astype(np.float64) for v in (conv.kernel, conv.bias, bn.gamma, bn.beta,
                                                   bn.moving_mean, bn.moving_variance)]
    kernel, bias, gamma, beta, mean, variance = weights
    z = x @ kernel[0, 0] + bias
    expected = gamma * (z - mean) / np.sqrt(variance + 1e-3) + beta
    actual = x @ folded["kernel"][0, 0] + folded["bias"]
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "options",
    [
        {"backbone": "resnet18", "aux_head": True, "multi_grid": True},
        {"backbone": "resnet50", "backbone_layout": "caffe"},  # convs with biases
    ],
    ids=["resnet18-aux", "resnet50-caffe"],
)
def test_folded_model_equals_the_original_in_inference(options):
    rng = np.random.default_rng(1)
    model = DANet(num_classes=5, **options)
    randomize_batch_norms(model, rng)
    model.set_gammas(pam=0.7, cam=0.3)
    folded = fold_batch_norm(model)

    assert not any(isinstance(layer, keras.layers.BatchNormalization)
                   for layer in _nested_layers(folded))
    # One conv with a bias for each pair; as many weights as the original less BN's four.
    assert len(folded.weights) == len(model.weights) - 3 * len(conv_bn_pairs(model)) - sum(
        1 for conv, _ in conv_bn_pairs(model) if conv.use_bias)
    images = rng.normal(size=(2, 48, 40, 3)).astype("float32")
    expected = infer(model, images)
    actual = infer(folded, images)
    assert sorted(actual) == sorted(expected)
    for key in expected:
        reference = expected[key]
        scale = np.max(np.abs(reference))
        # float32 rounding through ResNet-50 with random BN statistics: up to
        # ~1.6e-5 x scale seen; a dropped bias or epsilon is off by > 1e-2.
        np.testing.assert_allclose(actual[key], reference, rtol=0, atol=5e-5 * scale,
                                   err_msg=key)


def test_inference_model_folds_into_a_frozen_copy(tmp_path):
    rng = np.random.default_rng(2)
    model = DANet(num_classes=4, backbone="resnet18")
    randomize_batch_norms(model, rng)
    images = rng.normal(size=(1, 32, 40, 3)).astype("float32")
    shared = model.inference_model()
    folded = model.inference_model(fold_batch_norm=True)
    before = to_numpy(shared(images))
    np.testing.assert_allclose(to_numpy(folded(images)), before, rtol=0,
                               atol=1e-5 * np.max(np.abs(before)))

    # The folded copy survives a .keras round trip...
    path = str(tmp_path / "folded.keras")
    folded.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_array_equal(to_numpy(reloaded(images)), to_numpy(folded(images)))
    # ...and does not follow later changes of the original, which the shared one does.
    model.get_layer("head").get_layer("conv8").get_layer("conv").bias.assign(
        np.full(4, 3.0, "float32"))
    assert not np.allclose(to_numpy(shared(images)), before)
    np.testing.assert_array_equal(to_numpy(folded(images)), to_numpy(reloaded(images)))


@pytest.mark.backend_independent
def test_folding_refuses_what_it_cannot_fold():
    folded = fold_batch_norm(DANet(num_classes=3, backbone="resnet18"))
    with pytest.raises(ValueError, match="no BatchNormalization"):
        fold_batch_norm(folded)
    plain = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 1)])
    with pytest.raises(ValueError, match="no BatchNormalization"):
        fold_batch_norm(plain)

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="functional"):
        fold_batch_norm(Subclassed())
    after_relu = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.ReLU(),
                                   keras.layers.BatchNormalization()])
    with pytest.raises(ValueError, match="Conv2D"):
        conv_bn_pairs(after_relu)
