"""Preset directories: `save_to_preset` / `from_preset` (on every backend)."""

import json
import os

import numpy as np
import pytest
from conftest import relative_error, to_numpy
from helpers import infer, mmseg_layout_model

from danet_tf import DANet, preset_metadata
from danet_tf.models.presets import PresetError, convert_mmseg_checkpoint
from danet_tf.testing.mmseg_reference import mmseg_checkpoint


@pytest.fixture(scope="module")
def model():
    return mmseg_layout_model()


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).normal(size=(1, 37, 50, 3)).astype("float32")


def test_from_preset_gives_the_saved_models_outputs(model, images, tmp_path):
    directory = model.save_to_preset(str(tmp_path / "p"), {"dataset": "mine"})
    assert sorted(os.listdir(directory)) == ["config.json", "metadata.json", "model.weights.h5"]
    with open(os.path.join(directory, "config.json")) as f:
        assert json.load(f)["registered_name"] == "danet_tf>DANetBackbone"
    metadata = preset_metadata(directory)
    assert metadata["dataset"] == "mine"
    assert metadata["parameter_count"] == model.count_params()
    assert metadata["normalization"]["mean"] == [123.675, 116.28, 103.53]
    loaded = DANet.from_preset(directory)
    expected, got = infer(model, images), infer(loaded, images)
    for key in ("logits", "pam_logits", "cam_logits", "aux_logits"):
        assert relative_error(got[key], expected[key]) <= 1e-6, key


def test_a_new_class_count_keeps_every_weight_but_the_classifiers(model, tmp_path):
    directory = model.save_to_preset(str(tmp_path / "p"))
    loaded = DANet.from_preset(directory, num_classes=7)
    assert loaded.output["logits"].shape[-1] == 7
    kernel = loaded.get_layer("backbone").get_layer("layer4_1_conv2").kernel
    same = model.get_layer("backbone").get_layer("layer4_1_conv2").kernel
    np.testing.assert_array_equal(to_numpy(kernel), to_numpy(same))


@pytest.mark.backend_independent
def test_a_preset_is_never_overwritten_and_a_bad_directory_is_named(model, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not empty"):
        model.save_to_preset(str(tmp_path / "taken"))
    assert (tmp_path / "taken" / "mine.txt").read_text() == "keep"
    with pytest.raises(PresetError, match="not a preset directory"):
        DANet.from_preset(str(tmp_path / "taken"))
    with pytest.raises(ValueError, match="No preset 'danet_r7'.*danet_r50-d8_4xb2-40k_cityscapes"):
        DANet.from_preset("danet_r7")


def test_an_mmseg_checkpoint_converts_to_the_same_model(model, images, tmp_path):
    meta = {"CLASSES": ("a", "b", "c", "d"), "PALETTE": [[1, 2, 3]] * 4}
    path = mmseg_checkpoint(model, str(tmp_path / "m.pth"), meta)
    converted, metadata = convert_mmseg_checkpoint(path)
    assert metadata["class_names"] == ["a", "b", "c", "d"] and metadata["palette"][0] == [1, 2, 3]
    assert converted.align_corners is False and converted.aux_head and converted.deep_stem
    expected, got = infer(model, images), infer(converted, images)
    assert relative_error(got["aux_logits"], expected["aux_logits"]) <= 1e-6
    assert relative_error(got["logits"], expected["logits"]) <= 1e-6
    with pytest.raises(PresetError, match="resnet18 with 4 classes.*resnet50 with 19"):
        convert_mmseg_checkpoint(path, "danet_r50-d8_4xb2-40k_cityscapes-512x1024")
