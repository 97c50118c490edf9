"""bfloat16 inference: the model, the SavedModel export and the commands."""

import keras
import numpy as np
import pytest

from danet_tf import DANet
from danet_tf.deploy import export, loading
from danet_tf.models import precision


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    model = DANet(5, backbone="resnet18")
    model.set_gammas(pam=0.5, cam=0.5)
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
    assert precision.cpu_has_native_bfloat16(str(with_amx))
    assert not precision.cpu_has_native_bfloat16(str(without))
    assert not precision.cpu_has_native_bfloat16(str(avx512_only))
    assert not precision.cpu_has_native_bfloat16(str(tmp_path / "missing"))
    assert precision.cpu_flags(str(avx512_only)) == ("avx2", "avx512f", "avx512_bf16")


@pytest.mark.parametrize("flags, expected", [
    ("avx2 avx512f avx512_vnni amx_bf16 amx_int8", "AMX-INT8"),
    ("avx2 avx512f avx512_vnni avx512_bf16", "AVX-512 VNNI"),
    ("avx2 avx_vnni", "AVX-VNNI"), ("avx2 fma", "AVX2"), ("sse2", "other")])
def test_the_int8_class_is_the_best_int8_unit_the_flags_name(flags, expected):
    assert precision.int8_class(flags.split()) == expected


def _export_folder(tmp_path, versions_with_int8, newest):
    """`saved/m/m.keras`, SavedModel versions 1..newest and `openvino/<v>/m_int8.xml`."""
    folder = tmp_path / "saved" / "m"
    (folder / "openvino").mkdir(parents=True)
    (folder / "m.keras").write_bytes(b"")
    for version in range(1, newest + 1):
        (folder / str(version)).mkdir()
    for version in versions_with_int8:
        (folder / "openvino" / str(version)).mkdir()
        (folder / "openvino" / str(version) / "m_int8.xml").write_text("<net/>")
    return str(folder / "m.keras")


def test_auto_takes_the_int8_ir_exported_with_the_model(tmp_path):
    keras_file = _export_folder(tmp_path, versions_with_int8=(1, 2), newest=2)
    path, chosen, reason = loading.choose_precision(keras_file, "auto", flags=("avx2",))
    assert path.endswith("openvino/2/m_int8.xml") and chosen == "float32"
    assert "int8" in reason and "AVX2" in reason
    # Beside a float32 IR; an int8 IR stays itself.
    float_ir = path[:-len("_int8.xml")] + ".xml"
    assert loading.choose_precision(float_ir, "auto", flags=())[0] == path
    assert loading.choose_precision(path, "auto", flags=())[0] == path


def test_auto_ignores_an_int8_ir_of_an_older_version(tmp_path):
    # Version 3 (the .keras file's) has no int8 IR: version 2's is another model.
    keras_file = _export_folder(tmp_path, versions_with_int8=(2,), newest=3)
    assert loading.exported_int8_ir(keras_file) is None
    assert loading.choose_precision(keras_file, "auto", flags=("avx2",))[:2] == (keras_file,
                                                                                 "float32")


@pytest.mark.parametrize("flags, expected", [(("avx512f", "avx512_bf16"), "float32"),
                                             (("avx512f", "amx_bf16"), "bfloat16")])
def test_auto_takes_bfloat16_only_with_amx(tmp_path, flags, expected):
    keras_file = _export_folder(tmp_path, versions_with_int8=(), newest=1)
    path, chosen, reason = loading.choose_precision(keras_file, "auto", flags=flags)
    assert (path, chosen) == (keras_file, expected) and expected in reason


def test_an_explicit_precision_wins_over_auto(tmp_path):
    keras_file = _export_folder(tmp_path, versions_with_int8=(1,), newest=1)
    assert loading.choose_precision(keras_file, "float32", flags=("amx_int8",)) == (
        keras_file, "float32", None)
    with pytest.raises(ValueError, match="--precision must be one of"):
        loading.choose_precision(keras_file, "int4")


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
