"""The README's "Train on your own images" command, end to end, on a small
folder dataset made here (tiny backbone and sizes so it runs in CI, no
download: the preset's ImageNet weights are switched off): the training
script in a process of its own, then evaluation, the attention pictures and
the resumed rerun through the commands' `main` in this process."""

import json
import os
import subprocess
import sys

import pytest
from helpers import make_folder_dataset

from danet_tf.cli import evaluate, train, visualize_attention

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
pytestmark = [pytest.mark.slow, pytest.mark.lane("processes")]
NAMES = ["background", "cat", "dog"]
# The README command, then what makes it small enough for CI: ResNet-18 from
# scratch, 32 px crops, 2 x 2 steps.
README = ["--preset", "folder", "--set", "data.root=data/mine", "--set", "data.num_classes=3",
          "--set", f"data.class_names=[{', '.join(NAMES)}]"]
SMALL = ["--set", "model.backbone=resnet18", "--set", "model.backbone_layout=torchvision",
         "--set", "model.backbone_weights=none", "--set", "data.base_size=null",
         "--set", "data.crop_size=[32, 32]", "--set", "data.batch_size=2",
         "--set", "train.epochs=2", "--set", "train.steps_per_epoch=2"]


def _script(name, *args, cwd):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "training", f"{name}.py"), *args],
                            capture_output=True, text=True, cwd=cwd, timeout=900,
                            env={**os.environ, "KERAS_BACKEND": "tensorflow"})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def _make_three_class_folder(root):
    make_folder_dataset(str(root), "train", count=6, size=(40, 48), num_classes=3)
    make_folder_dataset(str(root), "val", count=2, size=(40, 48), num_classes=3, seed=1)


def test_train_evaluate_export_on_a_folder_dataset(tmp_path, monkeypatch, capsys):
    _make_three_class_folder(tmp_path / "data" / "mine")
    first = _script("train", *README, *SMALL,
                    "--set", "train.export_formats=[keras, saved_model, openvino]", cwd=tmp_path)
    out = first.stdout
    assert "data          folder (folder): 6 train / 2 val images" in out
    for name in NAMES:
        assert f"| {name} |" in out  # the per-class table uses the run's class names
    run_dir = tmp_path / "runs" / "danet50_folder"
    best = json.loads((run_dir / "best.json").read_text())
    export_dir = tmp_path / "saved_models" / "danet50_folder"
    assert (export_dir / "labels.txt").read_text().split() == NAMES
    assert (export_dir / "1" / "saved_model.pb").exists()
    assert (export_dir / "openvino" / "1" / "danet50_folder.xml").exists()
    assert "openvino_bfloat16" in out and "argmax_agreement" in out
    saved = json.loads((export_dir / "config.json").read_text())
    assert saved["data"]["class_names"] == NAMES

    # The rest in this process (each command's `main`, as its script calls
    # it): evaluate finds the run's config next to the model, no --preset/--config.
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    scores = evaluate.main(["--model", str(export_dir / "danet50_folder.keras"),
                            "--precision", "float32"])
    assert scores["miou"] == pytest.approx(best["miou"], abs=1e-9)  # the exported epoch
    printed = capsys.readouterr().out
    for name in NAMES:
        assert f"| {name} |" in printed
    # The pictures use the run's class names too.
    make_folder_dataset(str(tmp_path / "pics"), "x", count=1, size=(40, 48), num_classes=3)
    visualize_attention.main([str(tmp_path / "pics" / "x" / "images" / "img0.png"),
                              "--model", str(export_dir / "danet50_folder.keras"),
                              "--out", "att", "--cam-class", "dog"])
    assert "'dog'" in capsys.readouterr().out
    # The same command again finds the finished run instead of starting over.
    again = train.main([*README, *SMALL, "--set", "train.export_formats=[keras]"])
    assert again["resumed_at_epoch"] == 2 and not again["trained"]
    assert "The run had already trained its 2 epochs" in capsys.readouterr().out
