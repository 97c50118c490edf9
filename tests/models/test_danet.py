import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from conftest import to_numpy
from helpers import gradients, infer

import danet_tf
from danet_tf import DANet


def _count(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


@pytest.fixture(scope="module")
def danet18():
    """DANet on ResNet-18 where the model's size is not the point (fast on every backend)."""
    return DANet(num_classes=5, backbone="resnet18")


def test_output_shapes(danet18):
    outputs = infer(danet18, np.zeros((2, 70, 45, 3), "float32"))
    assert sorted(outputs) == ["cam_logits", "logits", "pam_logits"]
    for value in outputs.values():
        assert tuple(value.shape) == (2, 70, 45, 5)
    inference = danet18.inference_model()
    assert infer(inference, np.zeros((1, 33, 40, 3), "float32")).shape == (1, 33, 40, 5)


@pytest.mark.backend_independent
def test_danet101_parameter_counts_equal_official():
    model = DANet(num_classes=19, backbone="resnet101")
    assert _count(model.trainable_weights) == 66_454_779
    assert _count(model.get_layer("head").trainable_weights) == 23_954_619


def test_aux_head_and_multi_grid():
    model = DANet(num_classes=3, backbone="resnet50", aux_head=True, multi_grid=True)
    outputs = infer(model, np.zeros((1, 40, 40, 3), "float32"))
    assert tuple(outputs["aux_logits"].shape) == (1, 40, 40, 3)
    backbone = model.get_layer("backbone")
    assert [backbone.get_layer(f"layer4_{b}_conv2").dilation_rate[0]
            for b in range(3)] == [4, 8, 16]
    # FCN aux head: 1024*256*9 conv, 2*256 BN, 256*3+3 classifier.
    base = _count(DANet(num_classes=3, backbone="resnet50").trainable_weights)
    assert _count(model.trainable_weights) - base == 1024 * 256 * 9 + 2 * 256 + 256 * 3 + 3


def test_every_trainable_weight_gets_a_gradient(danet18):
    danet18.set_gammas(pam=0.5, cam=0.5)
    images = np.random.randn(2, 48, 48, 3).astype("float32")
    labels = np.random.randint(0, 5, (2, 48, 48))
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def loss(images):
        outputs = danet18(images, training=True)
        return sum(loss_fn(labels, outputs[k]) for k in ("logits", "pam_logits", "cam_logits"))

    grads = gradients(loss, [images], danet18.trainable_weights)[1:]
    dead = [w.path for w, g in zip(danet18.trainable_weights, grads) if g is None or not np.any(g)]
    assert not dead, f"weights without gradient: {dead}"
    # 20 convs (3 of them downsampling) + 20 BN (x2) in ResNet-18; head: 4 convs +
    # 4 BN (x2), PAM 6 + gamma, CAM gamma, 3 classifiers (x2).
    assert len(grads) == 20 + 40 + 4 + 8 + 7 + 1 + 6


# JAX, PyTorch: test_backends.py::test_the_core_runs_without_tensorflow_and_gives_its_logits
@pytest.mark.tensorflow
def test_keras_round_trip_in_fresh_process(tmp_path):
    model = DANet(num_classes=4, backbone="resnet18", aux_head=True)
    model.set_gammas(pam=0.3, cam=-0.2)
    images = np.random.randn(1, 41, 50, 3).astype("float32")
    expected = {k: to_numpy(v) for k, v in model(images).items()}
    path = tmp_path / "danet.keras"
    model.save(path)
    np.save(tmp_path / "images.npy", images)
    script = textwrap.dedent(
        f"""
        import numpy as np, keras
        import danet_tf
        model = keras.models.load_model({str(path)!r}, safe_mode=True)
        out = model(np.load({str(tmp_path / "images.npy")!r}))
        np.savez({str(tmp_path / "out.npz")!r},
                 **{{k: keras.ops.convert_to_numpy(v) for k, v in out.items()}})
        print(type(model).__name__, model.get_config()["backbone"])
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={**os.environ, "KERAS_BACKEND": keras.backend.backend()})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "DANet resnet18" in result.stdout
    restored = np.load(tmp_path / "out.npz")
    assert sorted(restored.files) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(restored[key], value)


@pytest.mark.backend_independent
def test_get_config_is_json_and_rebuilds():
    model = DANet(num_classes=7, backbone="resnet50", output_stride=16, align_corners=False)
    config = keras.saving.serialize_keras_object(model)["config"]
    import json

    rebuilt = DANet.from_config(json.loads(json.dumps(config)))
    assert rebuilt.get_config() == model.get_config()
    assert rebuilt.count_params() == model.count_params()


@pytest.mark.backend_independent
def test_bad_backbone_name():
    with pytest.raises(ValueError, match="backbone"):
        danet_tf.DANet(3, backbone="resnet26")


def test_dtype_policy_is_saved_and_restored(tmp_path):
    model = DANet(num_classes=3, backbone="resnet18", dtype="mixed_bfloat16")
    assert keras.config.dtype_policy().name == "float32"  # the global policy is left alone
    path = str(tmp_path / "mixed.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    assert restored.get_config()["dtype"]["config"]["name"] == "mixed_bfloat16"
    conv = restored.get_layer("backbone").get_layer("conv1")
    assert (conv.compute_dtype, conv.variable_dtype) == ("bfloat16", "float32")
    pam = restored.attention_layers()["pam"]
    assert pam.compute_dtype == "bfloat16"
    logits = restored(np.zeros((1, 32, 40, 3), "float32"))["logits"]
    assert keras.backend.standardize_dtype(logits.dtype) == "bfloat16"
    # And a float32 model stays float32 under another global policy.
    plain = str(tmp_path / "plain.keras")
    DANet(num_classes=3, backbone="resnet18").save(plain)
    keras.config.set_dtype_policy("mixed_float16")
    conv = keras.models.load_model(plain).get_layer("backbone").get_layer("conv1")
    assert conv.compute_dtype == "float32"


def test_compile_with_no_arguments_trains_on_images_and_masks():
    """The Keras-native path: `compile()` gives the official recipe and `fit`
    takes `(images, masks)` with no trainer, on every backend."""
    from danet_tf.models.losses import SegmentationCrossEntropy
    from danet_tf.models.optimizer import PolyDecay, TorchSGD

    keras.utils.set_random_seed(0)
    model = DANet(num_classes=3, backbone="resnet18", dropout=0.0)
    model.compile()
    assert isinstance(model.optimizer, TorchSGD)
    assert model.optimizer.momentum == 0.9 and model.optimizer.l2_weight_decay == 1e-4
    assert model.optimizer.lr_multiplier(model.get_layer("head").trainable_weights[0]) == 10.0
    assert model.optimizer.lr_multiplier(model.get_layer("backbone").trainable_weights[0]) == 1.0
    rng = np.random.default_rng(0)
    images = rng.normal(size=(4, 32, 32, 3)).astype("float32")
    masks = np.zeros((4, 32, 32), "int32")
    masks[:, :, 16:] = 1
    masks[:, 16:, :] = 2
    masks[0, :4, :4] = 255
    history = model.fit(images, masks, batch_size=2, epochs=4, verbose=0).history
    schedule = keras.optimizers.schedules.deserialize(model.optimizer.get_config()["learning_rate"])
    assert isinstance(schedule, PolyDecay) and schedule.total_steps == 8  # 2 batches x 4 epochs
    assert int(to_numpy(model.optimizer.iterations)) == 8
    # The loss is the sum of three ignore-255 cross-entropies, weight 1 each.
    predictions = model.predict(images, verbose=0)
    cross_entropy = SegmentationCrossEntropy()
    parts = [float(to_numpy(cross_entropy(masks, predictions[k])))
             for k in ("logits", "pam_logits", "cam_logits")]
    evaluated = model.evaluate(images, masks, verbose=0, return_dict=True)
    assert evaluated["loss"] == pytest.approx(sum(parts), rel=1e-4)
    assert history["loss"][-1] < 0.8 * history["loss"][0]
    predicted, labelled = predictions["logits"].argmax(-1), masks != 255
    ious = [np.sum((predicted == c) & (masks == c)) / np.sum(((predicted == c) | (masks == c))
                                                             & labelled)
            for c in range(3) if np.any(((predicted == c) | (masks == c)) & labelled)]
    assert evaluated["logits_miou"] == pytest.approx(np.mean(ious), abs=1e-6)


@pytest.mark.parametrize("head, modules", [("danet", ["pam", "cam"]), ("pam", ["pam"]),
                                           ("cam", ["cam"]), ("fcn", [])])
def test_the_attention_seams_find_each_heads_modules(head, modules):
    from danet_tf.models.attention import ChannelAttention, PositionAttention

    model = DANet(num_classes=3, backbone="resnet18", head=head)
    layers = model.attention_layers()
    assert sorted(layers) == sorted(modules)
    kinds = {"pam": PositionAttention, "cam": ChannelAttention}
    assert all(isinstance(layer, kinds[kind]) for kind, layer in layers.items())
    values = {kind: 0.25 * (i + 1) for i, kind in enumerate(modules)}
    model.set_gammas(**values)
    assert model.gammas() == pytest.approx(values)
    if "cam" not in modules:
        with pytest.raises(ValueError, match="no cam module"):
            model.set_gammas(cam=1.0)
    x = np.random.default_rng(0).normal(size=(1, 32, 40, 3)).astype("float32")
    inputs = model.attention_inputs(x)
    features = model.backbone(x, training=False)["layer4"]
    for kind, projection in (("pam", "conv5a"), ("cam", "conv5c")):
        if kind in modules:
            expected = model.head.get_layer(projection)(features, training=False)
            np.testing.assert_array_equal(to_numpy(inputs[kind]), to_numpy(expected))
    assert sorted(inputs) == sorted(modules)
