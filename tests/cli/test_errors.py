"""Every command turns the project's own errors into one line on stderr and
exit status 2; `--debug` (or DANET_DEBUG=1) raises them with the traceback."""

import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import make_folder_dataset
from PIL import Image

from danet_tf import DANet
from danet_tf.cli import convert_weights, predict, train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("model") / "tiny.keras")
    DANet(3, backbone="resnet18").save(path)
    return path


def _fails_with_one_line(capsys, main, argv, *fragments):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "error:" in err and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_a_batch_with_a_file_that_is_not_an_image(tmp_path, capsys, model_path):
    """Every readable file is segmented; the bad ones are listed at the end,
    one line each, and the command then exits with status 2."""
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    good = tmp_path / "photo.png"
    Image.fromarray(np.full((24, 32, 3), 90, np.uint8)).save(good)
    with pytest.raises(SystemExit) as info:
        predict.main([str(bad), str(good), "--model", model_path, "--out", str(tmp_path / "o")])
    assert info.value.code == 2
    assert (tmp_path / "o" / "photo_classes.png").exists()
    assert not (tmp_path / "o" / "notes_classes.png").exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("precision auto: ")  # what --precision auto picked, then the list
    assert err[1] == "1 of 2 files could not be segmented:"
    assert len(err) == 3 and "notes.png" in err[2] and "not a readable image" in err[2]
    with pytest.raises(ValueError, match="not a readable image"):
        predict.main([str(bad), "--model", model_path, "--out", str(tmp_path), "--debug"])


@pytest.mark.parametrize("override, fragments", [
    ("train.bogus=1", ("unknown key 'bogus'", "epochs")),
    ("train.epochs=two", ("train.epochs", "integer", "'two'")),
    ("data.flip=maybe", ("data.flip", "true or false")),
])
def test_bad_config_key_or_value(tmp_path, capsys, override, fragments):
    _fails_with_one_line(capsys, train.main,
                         ["--set", override, "--model-dir", str(tmp_path / "run")], *fragments)
    assert not (tmp_path / "run").exists()  # nothing written before the config is valid


def test_checkpoint_that_does_not_match_the_model(tmp_path, capsys):
    import torch

    checkpoint = str(tmp_path / "other.pth")
    torch.save({"state_dict": {"encoder.weight": torch.zeros(3)}}, checkpoint)
    _fails_with_one_line(capsys, convert_weights.main,
                         ["danet", checkpoint, "--backbone", "resnet50", "--num-classes", "3",
                          "--out", str(tmp_path / "x.keras")],
                         "does not match the model", "missing", "unexpected: encoder.weight")
    assert not (tmp_path / "x.keras").exists()


def test_missing_optional_dependency(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # as if PyTorch were not installed
    _fails_with_one_line(capsys, convert_weights.main,
                         ["danet", str(tmp_path / "x.pth"), "--out", str(tmp_path / "x.keras")],
                         "needs PyTorch", "pip install torch")


def test_imagenet_weights_without_a_network(tmp_path, capsys, monkeypatch):
    """What the folder preset does on a machine that cannot reach Keras' storage."""
    import keras

    def offline(**kwargs):  # keras.applications' own failure, word for word
        raise Exception("URL fetch failure on https://storage.googleapis.com/x.h5: None -- "
                        "[Errno -2] Name or service not known")

    monkeypatch.setattr(keras.applications, "ResNet50", offline)
    make_folder_dataset(str(tmp_path / "data"), "train")
    make_folder_dataset(str(tmp_path / "data"), "val")
    _fails_with_one_line(capsys, train.main,
                         ["--preset", "folder", "--set", f"data.root={tmp_path / 'data'}",
                          "--set", "data.num_classes=4",
                          "--model-dir", str(tmp_path / "run")],
                         "model.backbone_weights=imagenet", "could not download",
                         "Name or service not known", "none")


@pytest.mark.slow
def test_a_truncated_image_inside_training_names_the_file(tmp_path, capsys):
    root = tmp_path / "data"
    make_folder_dataset(str(root), "train", count=2, size=(40, 40), num_classes=3)
    make_folder_dataset(str(root), "val", count=1, size=(40, 40), num_classes=3)
    broken = root / "train" / "images" / "img1.png"
    broken.write_bytes(broken.read_bytes()[:60])
    argv = ["--model-dir", str(tmp_path / "run"), "--set", "data.source=folder",
            "--set", f"data.root={root}", "--set", "data.num_classes=3",
            "--set", "model.backbone=resnet18", "--set", "data.crop_size=[32, 32]",
            "--set", "data.batch_size=2", "--set", "train.steps_per_epoch=2",
            "--set", "train.epochs=1", "--set", "train.export_formats=[keras]"]
    _fails_with_one_line(capsys, train.main, argv, "img1.png")


def test_a_script_says_one_line_and_hides_tensorflow_start_up_lines(tmp_path):
    """TensorFlow's C++ start-up lines (oneDNN, cuda drivers, cuInit) are not
    shown unless --debug; the error is the only line."""
    script = [sys.executable, os.path.join(ROOT, "training", "train.py"),
              "--set", "train.epochs=two", "--model-dir", str(tmp_path / "run")]
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "DANET_DEBUG")}
    quiet = subprocess.run(script, capture_output=True, text=True, env=env, timeout=300)
    assert quiet.returncode == 2
    assert quiet.stderr.strip().splitlines() == [
        "train.py: error: --set.train.epochs: expected an integer. Received: 'two' "
        "(--debug shows the traceback)"]
    loud = subprocess.run(script + ["--debug"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert loud.returncode == 1
    assert "Traceback" in loud.stderr
