import io
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import randomize_batch_norms
from PIL import Image

from danet_tf import DANet
from danet_tf.deploy import export
from danet_tf.models.preprocessing import normalize

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model():
    # Seeded: random weights leave near-ties, so int8 agreement varies by initialisation.
    keras.utils.set_random_seed(0)
    model = DANet(4, backbone="resnet18")  # the export contract is tested, not the size
    model.set_gammas(pam=0.6, cam=-0.4)
    return model


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (2, 36, 44, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def saved_model(model, tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    path = export.export_saved_model(model, str(root), "danet", version=3,
                                     include_probabilities=True)
    return root, path


def _keras_logits(model, images):
    return np.asarray(model.inference_model()(np.asarray(normalize(images))))


def assert_classes_match(classes, logits, margin=1e-3):
    """Equal argmax wherever the top two logits differ by more than `margin`
    (random weights leave float-noise ties)."""
    top2 = np.sort(logits, axis=-1)[..., -2:]
    clear = (top2[..., 1] - top2[..., 0]) > margin
    np.testing.assert_array_equal(np.asarray(classes)[clear], logits.argmax(-1)[clear])
    assert clear.mean() > 0.95


def test_saved_model_layout_and_cli(saved_model):
    root, path = saved_model
    assert path == os.path.join(str(root), "danet", "3")
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run([cli, "show", "--dir", path, "--all"], capture_output=True,
                           text=True, check=True).stdout
    for expected in ("signature_def['serving_default']", "signature_def['serving_bytes']",
                     "signature_def['predict_logits']", "dtype: DT_UINT8", "dtype: DT_STRING",
                     "shape: (-1, -1, -1, 3)", "name: serving_default_images:0"):
        assert expected in shown, expected
    assert "outputs['classes'] tensor_info:\n        dtype: DT_INT32" in shown


def test_signatures_match_keras(model, images, saved_model):
    _, path = saved_model
    loaded = tf.saved_model.load(path)
    expected = _keras_logits(model, images)
    logits = loaded.signatures["predict_logits"](images=tf.constant(np.asarray(normalize(images))))
    assert np.max(np.abs(logits["logits"].numpy() - expected)) <= 1e-4
    served = loaded.signatures["serving_default"](images=tf.constant(images))
    assert_classes_match(served["classes"], expected)
    assert served["classes"].dtype == tf.int32
    np.testing.assert_allclose(served["probabilities"].numpy(),
                               tf.nn.softmax(expected).numpy(), atol=1e-5)
    # Another size through the same signature (dynamic H, W).
    other = images[:1, :20, :28]
    assert_classes_match(loaded.signatures["serving_default"](images=tf.constant(other))["classes"],
                         _keras_logits(model, other))


def test_bytes_signature_decodes_png_and_jpeg(model, images, saved_model):
    _, path = saved_model
    loaded = tf.saved_model.load(path)

    def encode(array, fmt):
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format=fmt)
        return buffer.getvalue()

    pngs = tf.constant([encode(i, "PNG") for i in images])
    served = loaded.signatures["serving_bytes"](image_bytes=pngs)
    assert_classes_match(served["classes"], _keras_logits(model, images))
    jpeg = tf.constant([encode(images[0], "JPEG")])
    assert loaded.signatures["serving_bytes"](image_bytes=jpeg)["classes"].shape == (1, 36, 44)


@pytest.mark.parametrize("bad, message", [
    ("float", "(?i)dtype|uint8|float"),
    ("rank3", r"\[8,8,3\] is not compatible with expected shape \[\?,\?,\?,3\]"),
    ("channels4", r"\[1,8,8,4\] is not compatible"),
    ("empty", "non-zero height"),
])
def test_bad_serving_inputs_are_refused(saved_model, bad, message):
    # Signatures are called in this process: a crash (as a bare conv on a
    # rank-3 tensor causes) would take the test run down with it.
    _, path = saved_model
    serve = tf.saved_model.load(path).signatures["serving_default"]
    value = {"float": np.zeros((1, 8, 8, 3), np.float32), "rank3": np.zeros((8, 8, 3), np.uint8),
             "channels4": np.zeros((1, 8, 8, 4), np.uint8),
             "empty": np.zeros((1, 0, 8, 3), np.uint8)}[bad]
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError), match=message):
        serve(images=tf.constant(value))


def test_bytes_that_are_not_an_image_are_refused(saved_model):
    _, path = saved_model
    serve = tf.saved_model.load(path).signatures["serving_bytes"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="(?i)unknown image file format"):
        serve(image_bytes=tf.constant([b"definitely not a picture"]))


def test_existing_version_is_refused_unless_overwrite(model, saved_model):
    root, path = saved_model
    marker = os.path.join(path, "saved_model.pb")
    before = os.path.getmtime(marker)
    with pytest.raises(FileExistsError, match="overwrite"):
        export.export_saved_model(model, str(root), "danet", version=3)
    assert os.path.getmtime(marker) == before
    with pytest.raises(ValueError, match="positive integer"):
        export.export_saved_model(model, str(root), "danet", version="v2")


@pytest.mark.lane("memory")
def test_onnx_matches_keras(model, images, tmp_path):
    """Exported in a process of its own: tf2onnx's conversion peaks at several
    GB and would stay in the suite's process for every later test."""
    import onnxruntime

    model.save(tmp_path / "danet.keras")
    path = str(tmp_path / "danet.onnx")
    code = ("import keras, danet_tf; from danet_tf.deploy import export; "
            f"export.export_onnx(keras.models.load_model({str(tmp_path / 'danet.keras')!r}), "
            f"{path!r})")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "KERAS_BACKEND": "tensorflow"})
    assert result.returncode == 0, result.stderr[-3000:]
    session = onnxruntime.InferenceSession(path)
    x = np.asarray(normalize(images))
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert np.max(np.abs(got - _keras_logits(model, images))) <= 1e-4


def _agreement(a, b):
    return float(np.mean(a.argmax(-1) == b.argmax(-1)))


def test_tflite_modes_agree_with_keras(model, images, tmp_path):
    """All four modes from one folded source (as `export_tflite` writes them)."""
    x = np.asarray(normalize(images))
    reference = _keras_logits(model, images)
    paths = export.export_tflite(model, str(tmp_path), "danet", (36, 44),
                                 representative_images=list(x))
    assert sorted(paths) == sorted(export.TFLITE_MODES)
    fp32 = export.run_tflite(paths["fp32"], x)
    assert np.max(np.abs(fp32 - reference)) <= 1e-3
    assert _agreement(fp32, reference) >= 0.999
    assert _agreement(export.run_tflite(paths["fp16"], x), reference) >= 0.995
    assert _agreement(export.run_tflite(paths["dynamic_int8"], x), reference) >= 0.95
    assert _agreement(export.run_tflite(paths["int8"], x), reference) >= 0.95
    assert os.path.getsize(paths["int8"]) < 0.3 * os.path.getsize(paths["fp32"])
    assert os.path.getsize(paths["fp16"]) < 0.6 * os.path.getsize(paths["fp32"])
    with pytest.raises(ValueError, match="representative"):
        export.tflite_bytes(model, "int8", (36, 44))


def test_existing_tflite_files_are_refused_before_converting(model, tmp_path):
    existing = tmp_path / "danet_fp16.tflite"
    existing.write_bytes(b"an earlier export")
    with pytest.raises(FileExistsError, match="overwrite"):
        export.export_tflite(model, str(tmp_path), "danet", (36, 44), modes=("fp32", "fp16"))
    assert existing.read_bytes() == b"an earlier export"
    assert not (tmp_path / "danet_fp32.tflite").exists()


@pytest.mark.parametrize("head", ["psp", "aspp"])
def test_context_heads_export_to_tflite_and_openvino(head, tmp_path):
    """The layers only the comparison heads use (adaptive pooling, image
    pooling, dilated 3x3) convert: TFLite at a fixed size, OpenVINO with
    dynamic height and width."""
    keras.utils.set_random_seed(1)
    model = DANet(4, backbone="resnet18", head=head)
    randomize_batch_norms(model, np.random.default_rng(2))  # folding must pair them right
    # 128x160: a 16x20 feature map, so rate-12 taps of ASPP reach real pixels.
    images = np.random.default_rng(3).integers(0, 256, (1, 128, 160, 3), dtype=np.uint8)
    x = np.asarray(normalize(images))
    reference = _keras_logits(model, images)
    tflite = export.export_tflite(model, str(tmp_path / "tflite"), head, (128, 160),
                                  modes=("fp32",))
    np.testing.assert_allclose(export.run_tflite(tflite["fp32"], x), reference,
                               atol=1e-3 * np.abs(reference).max())
    compiled = export.compile_openvino(export.export_openvino(model, str(tmp_path / "ov"), head))
    other = np.random.default_rng(1).integers(0, 256, (2, 40, 56, 3), dtype=np.uint8)
    for batch in (images, other):
        expected = _keras_logits(model, batch)
        np.testing.assert_allclose(export.run_openvino(compiled, np.asarray(normalize(batch))),
                                   expected, atol=1e-3 * np.abs(expected).max())
