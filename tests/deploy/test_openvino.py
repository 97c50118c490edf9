"""OpenVINO IR export and runtime against Keras (random weights, gamma != 0)."""

import os

import keras
import numpy as np
import pytest

from danet_tf import DANet
from danet_tf.deploy import export, loading

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    model = DANet(5, backbone="resnet18")
    model.set_gammas(pam=0.5, cam=-0.3)
    return model


@pytest.fixture(scope="module")
def xml(model, tmp_path_factory):
    return export.export_openvino(model, str(tmp_path_factory.mktemp("ov") / "1"), "danet")


def test_layout_and_refusal_to_overwrite(model, xml):
    directory = os.path.dirname(xml)
    assert sorted(os.listdir(directory)) == ["danet.bin", "danet.xml"]
    with pytest.raises(FileExistsError, match="overwrite"):
        export.export_openvino(model, directory, "danet")


def test_the_ir_holds_the_unchunked_attention(model, tmp_path):
    """Measured faster and smaller under OpenVINO than the chunked Loop."""
    chunked = DANet(5, backbone="resnet18", attention_block_size=8)
    chunked.set_weights(model.get_weights())
    path = export.export_openvino(chunked, str(tmp_path / "ov"), "danet")
    with open(path) as f:
        ir = f.read()
    assert 'type="Loop"' not in ir and 'type="TensorIterator"' not in ir
    images = np.random.default_rng(2).normal(size=(1, 40, 48, 3)).astype("float32")
    got = export.run_openvino(export.compile_openvino(path, "float32"), images)
    reference = np.asarray(chunked.inference_model()(images))
    assert np.max(np.abs(got - reference)) <= 1e-4 * max(1.0, np.max(np.abs(reference)))


@pytest.mark.parametrize("shape", [(2, 64, 80, 3), (1, 40, 56, 3)])  # dynamic batch, H, W
def test_float32_equals_keras_and_bfloat16_agrees(model, xml, shape):
    images = np.random.default_rng(1).normal(size=shape).astype("float32")
    reference = np.asarray(model.inference_model()(images))
    f32 = export.run_openvino(export.compile_openvino(xml, "float32"), images)
    assert f32.shape == reference.shape
    assert np.max(np.abs(f32 - reference)) <= 1e-4 * np.max(np.abs(reference))
    bf16 = export.run_openvino(export.compile_openvino(xml, "bfloat16"), images)
    assert np.max(np.abs(bf16 - reference)) <= 0.05 * np.max(np.abs(reference))
    assert np.mean(bf16.argmax(-1) == reference.argmax(-1)) >= 0.98


def test_commands_load_the_xml(model, xml):
    logits_fn, num_classes = loading.load_logits_fn(xml, "bfloat16")
    assert num_classes == 5
    images = np.random.default_rng(2).normal(size=(1, 48, 48, 3)).astype("float32")
    assert logits_fn(images).shape == (1, 48, 48, 5)
