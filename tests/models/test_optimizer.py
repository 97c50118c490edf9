import keras
import numpy as np
import pytest

from danet_tf.models.optimizer import PolyDecay, TorchSGD


def test_poly_decay_formula_and_warmup():
    schedule = PolyDecay(0.01, total_steps=100, power=0.9)
    for step in (0, 1, 50, 99, 100, 150):
        expected = 0.01 * (1 - min(step, 100) / 100) ** 0.9
        np.testing.assert_allclose(float(schedule(step)), expected, rtol=1e-5, atol=1e-12)
    warm = PolyDecay(0.01, total_steps=100, warmup_steps=10)
    np.testing.assert_allclose(float(warm(4)), 0.01 * (1 - 0.04) ** 0.9 * 0.5, rtol=1e-5)
    assert PolyDecay.from_config(warm.get_config()).get_config() == warm.get_config()


def test_torch_sgd_matches_pytorch_update_rule_and_multipliers():
    inputs = keras.Input((3,))
    x = keras.layers.Dense(2, name="backbone_dense")(inputs)
    outputs = keras.layers.Dense(1, name="head_dense")(x)
    model = keras.Model(inputs, outputs)
    lr, momentum, wd = 0.1, 0.9, 0.01
    optimizer = TorchSGD(lr, momentum, wd, lr_multipliers={"head_": 10.0})
    weights = [keras.ops.convert_to_numpy(w).astype(np.float64) for w in model.trainable_weights]
    buffers = [np.zeros_like(w) for w in weights]
    rng = np.random.default_rng(0)
    for _ in range(3):
        grads = [rng.normal(size=w.shape) for w in weights]
        optimizer.apply_gradients(zip([g.astype("float32") for g in grads],
                                      model.trainable_weights))
        for i, variable in enumerate(model.trainable_weights):
            multiplier = 10.0 if variable.path.startswith("head_") else 1.0
            buffers[i] = momentum * buffers[i] + grads[i] + wd * weights[i]
            weights[i] = weights[i] - lr * multiplier * buffers[i]
    for variable, expected in zip(model.trainable_weights, weights):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), expected, rtol=1e-5,
                                   atol=1e-6)


def test_config_round_trip():
    optimizer = TorchSGD(PolyDecay(0.01, 10), 0.8, 1e-4, {"head/": 10.0})
    restored = TorchSGD.from_config(keras.optimizers.serialize(optimizer)["config"])
    assert restored.lr_multipliers == {"head/": 10.0}
    assert restored.momentum == pytest.approx(0.8)
