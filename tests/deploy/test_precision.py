"""bfloat16 inference: the model, the SavedModel export and the commands."""

import keras
import numpy as np
import pytest

from danet_tf import DANet
from danet_tf.deploy import export, loading


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    model = DANet(5, backbone="resnet18")
    model.get_layer("head").get_layer("sa").gamma.assign([0.5])
    model.get_layer("head").get_layer("sc").gamma.assign([0.5])
    return model


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).normal(size=(2, 64, 80, 3)).astype("float32")


@pytest.mark.parametrize("fold", [False, True])
def test_bfloat16_inference_model_agrees_with_float32(model, images, fold):
    reference = np.asarray(model.inference_model()(images))
    net = model.inference_model(fold_batch_norm=fold, precision="bfloat16")
    assert net.get_layer("backbone").get_layer("conv1").compute_dtype == "bfloat16"
    logits = net(images)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    logits = np.asarray(logits)
    # bfloat16 has 8 bits of mantissa: ~1 % of the logit scale (seen 1.1-1.4 %).
    assert np.max(np.abs(logits - reference)) <= 0.05 * np.max(np.abs(reference))
    assert np.mean(logits.argmax(-1) == reference.argmax(-1)) >= 0.98
    # The original model is untouched (a copy computes in bfloat16).
    assert model.get_layer("backbone").get_layer("conv1").compute_dtype == "float32"


def test_unknown_precision_is_refused(model):
    with pytest.raises(ValueError, match="precision"):
        model.inference_model(precision="float16")


def test_native_bfloat16_is_read_from_the_cpu_flags(tmp_path):
    with_amx = tmp_path / "amx"
    with_amx.write_text("flags\t: fpu sse2 avx512f amx_bf16 amx_tile\n")
    without = tmp_path / "plain"
    without.write_text("flags\t: fpu sse2 avx2 avx512f\n")
    avx512_only = tmp_path / "avx512_bf16"  # measured slower in bfloat16 than float32
    avx512_only.write_text("flags\t: fpu sse2 avx2 avx512f avx512_bf16\n")
    assert loading.cpu_has_native_bfloat16(str(with_amx))
    assert not loading.cpu_has_native_bfloat16(str(without))
    assert not loading.cpu_has_native_bfloat16(str(avx512_only))
    assert not loading.cpu_has_native_bfloat16(str(tmp_path / "missing"))


@pytest.mark.slow
def test_bfloat16_saved_model_keeps_its_signatures(model, tmp_path):
    import tensorflow as tf

    from danet_tf.models.preprocessing import normalize

    path = export.export_saved_model(model, str(tmp_path), "danet", precision="bfloat16")
    loaded = tf.saved_model.load(path)
    pixels = np.random.default_rng(1).integers(0, 256, (1, 48, 64, 3), dtype=np.uint8)
    served = loaded.signatures["serving_default"](images=tf.constant(pixels))
    assert served["classes"].dtype == tf.int32 and served["classes"].shape == (1, 48, 64)
    logits = loaded.signatures["predict_logits"](images=tf.constant(normalize(pixels)))["logits"]
    assert logits.dtype == tf.float32
    reference = np.asarray(model.inference_model()(normalize(pixels)))
    assert np.mean(served["classes"].numpy() == reference.argmax(-1)) >= 0.98
