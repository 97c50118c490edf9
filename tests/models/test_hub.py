"""keras-hub's loaders on this package's presets (danet_tf.models.hub)."""

import os

import keras
import keras_hub
import numpy as np
import pytest
from conftest import relative_error, to_numpy
from helpers import infer, mmseg_layout_model

from danet_tf import DANet
from danet_tf.models.hub import DANetBackbone, DANetImageSegmenter

# The ImageNet statistics on 0-255, written out: the reference the
# preprocessor is checked against.
MEAN = np.array([123.675, 116.28, 103.53])
STD = np.array([58.395, 57.12, 57.375])


@pytest.fixture(scope="module")
def model():
    return mmseg_layout_model()


@pytest.fixture(scope="module")
def preset(model, tmp_path_factory):
    return model.save_to_preset(str(tmp_path_factory.mktemp("hub") / "p"))


@pytest.fixture(scope="module")
def raw_images():
    return np.random.default_rng(0).uniform(0, 255, size=(2, 37, 50, 3)).astype("float32")


def normalised(raw_images):
    return ((raw_images.astype("float64") - MEAN) / STD).astype("float32")


def test_image_segmenter_from_preset_predicts_danets_logits_from_raw_images(
        model, preset, raw_images):
    segmenter = keras_hub.models.ImageSegmenter.from_preset(preset)
    assert isinstance(segmenter, DANetImageSegmenter)
    x = to_numpy(segmenter.preprocessor(raw_images))
    assert np.abs(x - normalised(raw_images)).max() <= 1e-5
    expected = infer(model, normalised(raw_images))["logits"]
    assert relative_error(segmenter.predict(raw_images, verbose=0), expected) <= 1e-5


def test_backbone_from_preset_gives_every_output_of_the_model(model, preset, raw_images):
    backbone = keras_hub.models.Backbone.from_preset(preset)
    assert isinstance(backbone, DANetBackbone)
    expected, got = infer(model, normalised(raw_images)), infer(backbone, normalised(raw_images))
    assert sorted(got) == ["aux_logits", "cam_logits", "logits", "pam_logits"]
    for key in got:
        assert relative_error(got[key], expected[key]) <= 1e-6, key


def test_a_new_class_count_keeps_every_weight_but_the_classifiers(model, preset):
    segmenter = keras_hub.models.ImageSegmenter.from_preset(preset, num_classes=7)
    assert segmenter.output.shape[-1] == 7 and segmenter.num_classes == 7
    layer4 = segmenter.backbone.get_layer("backbone").get_layer("layer4_1_conv2").kernel
    same = model.get_layer("backbone").get_layer("layer4_1_conv2").kernel
    np.testing.assert_array_equal(to_numpy(layer4), to_numpy(same))


def test_a_segmenter_saved_by_keras_hub_loads_in_both_directions(model, preset, raw_images,
                                                                  tmp_path):
    segmenter = keras_hub.models.ImageSegmenter.from_preset(preset)
    segmenter.save_to_preset(str(tmp_path / "hub"))
    assert "task.json" in os.listdir(tmp_path / "hub")
    expected = infer(model, normalised(raw_images))["logits"]
    again = keras_hub.models.ImageSegmenter.from_preset(str(tmp_path / "hub"))
    assert relative_error(again.predict(raw_images, verbose=0), expected) <= 1e-5
    danet = DANet.from_preset(str(tmp_path / "hub"))
    assert relative_error(infer(danet, normalised(raw_images))["logits"], expected) <= 1e-6


def test_a_catalogue_name_loads_from_the_cache(model, preset, raw_images, tmp_path, monkeypatch):
    name = "danet_r50-d8_4xb2-40k_cityscapes-512x1024"
    os.makedirs(tmp_path / "presets")
    os.symlink(preset, tmp_path / "presets" / name)
    monkeypatch.setenv("DANET_TF_CACHE", str(tmp_path))
    segmenter = DANetImageSegmenter.from_preset(name)
    expected = infer(model, normalised(raw_images))["logits"]
    assert relative_error(segmenter.predict(raw_images, verbose=0), expected) <= 1e-5


def test_the_segmenter_fits_with_keras_hubs_defaults(preset, raw_images):
    segmenter = keras_hub.models.ImageSegmenter.from_preset(preset)
    segmenter.compile()
    labels = keras.ops.one_hot(np.random.default_rng(1).integers(0, 4, size=(2, 37, 50)), 4)
    kernel = segmenter.backbone.get_layer("backbone").get_layer("layer4_1_conv2").kernel
    before = to_numpy(kernel).copy()
    history = segmenter.fit(raw_images, labels, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = to_numpy(kernel)
    assert np.abs(after - before).max() > 0


@pytest.mark.backend_independent
def test_the_backbone_checks_danets_arguments():
    with pytest.raises(ValueError, match="backbone must be one of"):
        DANetBackbone(4, backbone="resnet7")
    config = DANetBackbone(3, backbone="resnet18", head="fcn").get_config()
    assert config["head"] == "fcn" and config["num_classes"] == 3
    assert DANetBackbone.from_config(config).get_config() == config


@pytest.mark.backend_independent
def test_the_backbone_keeps_its_dtype_policy():
    backbone = DANetBackbone(3, backbone="resnet18", dtype="mixed_bfloat16")
    assert keras.config.dtype_policy().name == "float32"
    assert backbone.get_config()["dtype"]["config"]["name"] == "mixed_bfloat16"
    conv = backbone.get_layer("backbone").get_layer("conv1")
    assert (conv.compute_dtype, conv.variable_dtype) == ("bfloat16", "float32")
