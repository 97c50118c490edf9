"""A converted mmseg checkpoint through the commands: convert_weights.py mmseg
(a .keras file with its config.json, or a preset), evaluate.py with mmseg's
test protocol as the conversion recorded it, predict.py with a preset by
name from the cache."""

import json
import os

import numpy as np
import pytest
from helpers import make_folder_dataset
from PIL import Image

from danet_tf import DANet, preset_metadata
from danet_tf.cli import convert_weights, evaluate, predict
from danet_tf.deploy.loading import compiled_logits_fn
from danet_tf.deploy.mmseg_inference import MMSegSegmenter
from danet_tf.run_config import load_config_for_model
from danet_tf.testing.mmseg_reference import mmseg_checkpoint

pytestmark = pytest.mark.slow
# The catalogue's name pattern: a ResNet-18 at 769x769 on Cityscapes, whose
# protocol is the sliding window with align_corners=True.
CONFIG = "danet_r18-d8_1xb2-1k_cityscapes-769x769"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    model = DANet(19, backbone="resnet18", deep_stem=True, aux_head=True)
    model.set_gammas(pam=0.5, cam=0.5)
    path = str(tmp_path_factory.mktemp("ckpt") / "danet_r18.pth")
    return mmseg_checkpoint(model, path), model


def test_a_keras_conversion_records_mmsegs_protocol_and_evaluates_with_it(
        checkpoint, tmp_path, capsys):
    path, original = checkpoint
    out = str(tmp_path / "m" / "danet_r18.keras")
    convert_weights.main(["mmseg", path, "--config", CONFIG, "--out", out])
    assert "align_corners=True" in capsys.readouterr().out
    config, _ = load_config_for_model(out)
    assert config.data.name == "cityscapes" and config.model.align_corners is True
    assert config.eval.protocol == "mmseg" and list(config.eval.crop) == [769, 769]
    # A second conversion into the same directory would replace its config.json.
    with pytest.raises(SystemExit):
        convert_weights.main(["mmseg", path, "--config", CONFIG, "--out",
                              str(tmp_path / "m" / "other.keras")])
    assert "config.json exists" in capsys.readouterr().err

    pairs = make_folder_dataset(str(tmp_path / "data"), "val", count=2, size=(30, 41),
                                num_classes=19)
    result_path = str(tmp_path / "eval.json")
    small = ["--set", "data.source=folder", "--set", f"data.root={tmp_path / 'data'}",
             "--set", "eval.scale=[60, 40]", "--set", "eval.crop=[24, 32]",
             "--set", "eval.stride=[16, 21]"]
    evaluate.main(["--model", out, "--json", result_path, *small])
    result = json.load(open(result_path))
    assert result["protocol"] == "mmseg protocol: resize to [60, 40], crop [24, 32] stride [16, 21]"
    # The same protocol, independently of the command: MMSegSegmenter on the
    # original model, then the confusion matrix by NumPy.
    segmenter = MMSegSegmenter(compiled_logits_fn(original.inference_model()), (60, 40),
                               (24, 32), (16, 21), align_corners=True)
    confusion = np.zeros((19, 19), np.int64)
    for image, mask in pairs:
        predicted, valid = segmenter.predict(image), mask != 255
        np.add.at(confusion, (mask[valid], predicted[valid]), 1)
    np.testing.assert_array_equal(np.asarray(result["confusion"]), confusion)

    with pytest.raises(SystemExit):
        evaluate.main(["--model", out, "--crop", "24", *small])
    assert "--crop: options of the official protocol" in capsys.readouterr().err


def test_a_preset_by_name_predicts_from_the_cache(checkpoint, tmp_path, monkeypatch):
    path, original = checkpoint
    name = "danet_r50-d8_4xb2-40k_cityscapes-512x1024"  # a catalogue name
    cache = tmp_path / "cache"
    convert_weights.main(["mmseg", path, "--config", CONFIG, "--out",
                          str(cache / "presets" / name)])
    assert preset_metadata(str(cache / "presets" / name))["dataset"] == "cityscapes"
    monkeypatch.setenv("DANET_TF_CACHE", str(cache))
    image = np.random.default_rng(0).integers(0, 256, (33, 47, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "street.png")
    predict.main([str(tmp_path / "street.png"), "--model", name, "--out", str(tmp_path / "p"),
                  "--set", "eval.scale=[66, 47]", "--precision", "float32"])
    classes = np.asarray(Image.open(tmp_path / "p" / "street_classes.png"))
    expected = MMSegSegmenter(compiled_logits_fn(original.inference_model()), (66, 47),
                              (769, 769), (513, 513), align_corners=True).predict(image)
    np.testing.assert_array_equal(classes, expected)
    assert os.listdir(cache) == ["presets"]  # nothing was downloaded


def test_training_starts_from_a_preset_with_its_architecture(checkpoint, tmp_path):
    from danet_tf.cli.train import adopt_initial_model, check_before_training
    from danet_tf.config import load_config
    from danet_tf.train.trainer import start_training

    path, original = checkpoint
    preset = str(tmp_path / "preset")
    convert_weights.main(["mmseg", path, "--config", CONFIG, "--out", preset])
    make_folder_dataset(str(tmp_path / "data"), "train", count=2, size=(30, 41), num_classes=3)
    make_folder_dataset(str(tmp_path / "data"), "val", count=1, size=(30, 41), num_classes=3)
    overrides = [f"data.root={tmp_path / 'data'}", "data.num_classes=3", "data.batch_size=2",
                 "data.crop_size=[32, 32]", f"model.init_from={preset}",
                 f"train.model_dir={tmp_path / 'run'}", f"train.export_dir={tmp_path / 'out'}"]
    config = adopt_initial_model(load_config("folder", None, overrides), overrides)
    assert (config.model.backbone, config.model.deep_stem, config.model.aux_head,
            config.model.align_corners, config.model.backbone_weights) == (
                "resnet18", True, True, True, None)
    wrong = adopt_initial_model(load_config("folder", None, overrides + [
        "model.deep_stem=false"]), overrides + ["model.deep_stem=false"])
    with pytest.raises(ValueError, match=r"model.init_from cannot .*model.deep_stem: True"):
        check_before_training(wrong, "auto")
    check_before_training(config, "auto")
    session = start_training(config)
    assert "classifiers start anew (19 -> 3 classes)" in session.weights_report
    for name in ("backbone", "head"):
        trained = original.get_layer(name).get_weights()
        started = session.model.get_layer(name).get_weights()
        same = [np.array_equal(a, b) for a, b in zip(trained, started) if a.shape == b.shape]
        assert len(same) == len(trained) - (6 if name == "head" else 0) and all(same)


def test_an_official_checkpoint_converts_to_a_preset(tmp_path):
    import torch

    from danet_tf.testing.torch_danet import DANet as TorchDANet
    from danet_tf.testing.torch_danet import randomize

    reference = randomize(TorchDANet(num_classes=5))
    path = str(tmp_path / "official.pth.tar")
    torch.save({"epoch": 1, "state_dict": reference.state_dict()}, path)
    preset = str(tmp_path / "preset")
    convert_weights.main(["danet", path, "--backbone", "resnet50", "--num-classes", "5",
                          "--out", preset])
    assert preset_metadata(preset)["source"]["format"] == "official DANet"
    images = np.random.default_rng(0).normal(size=(1, 3, 34, 45)).astype("float32")
    with torch.no_grad():
        expected = reference(torch.from_numpy(images))[0].permute(0, 2, 3, 1).numpy()
    got = DANet.from_preset(preset).predict(np.transpose(images, (0, 2, 3, 1)), verbose=0)
    assert np.max(np.abs(got["logits"] - expected)) <= 1e-4 * np.max(np.abs(expected))
