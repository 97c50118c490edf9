"""A run's life cycle as a new user lives it: nothing a run made is lost or
overwritten by another, reruns are idempotent, what is printed is what is
exported, and the commands around training follow the same rules."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from danet_tf.cli import evaluate, train
from danet_tf.cli import export as export_cli
from danet_tf.deploy import layout

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
pytestmark = pytest.mark.slow
TINY = ["--set", "data.synthetic_train_size=8", "--set", "data.synthetic_val_size=4",
        "--set", "data.synthetic_image_size=40", "--set", "data.crop_size=[32, 32]",
        "--set", "data.batch_size=4", "--set", "data.eval_batch_size=4",
        "--set", "model.backbone=resnet18", "--set", "train.epochs=1",
        "--set", "train.steps_per_epoch=1", "--set", "train.warmup_steps=0",
        "--set", "train.export_formats=[keras, saved_model]"]
RUN, EXPORTS = os.path.join("runs", "danet_quickstart"), os.path.join("saved_models",
                                                                       "danet_quickstart")


def _digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _tree(path):
    """Every file under `path` with its digest: what a command must not change."""
    return {os.path.relpath(os.path.join(d, f), path): _digest(os.path.join(d, f))
            for d, _, files in os.walk(path) for f in files}


def _versions(folder):
    return sorted(d for d in os.listdir(folder) if d.isdigit())


def _fails_with_one_line(capsys, main, argv):
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished one-epoch quick-start run and its exports (copied per test)."""
    where = tmp_path_factory.mktemp("finished")
    cwd = os.getcwd()
    os.chdir(where)
    try:
        train.main(TINY)
    finally:
        os.chdir(cwd)
    return where


@pytest.fixture
def workdir(finished_run, tmp_path, monkeypatch):
    for folder in ("runs", "saved_models"):
        shutil.copytree(finished_run / folder, tmp_path / folder)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_restart_moves_the_run_and_its_exports_aside_together(workdir, capsys):
    """Another model started with --restart where a run was: the old `.keras`
    and SavedModel versions move with the old run, the new run's folder holds
    only its own version 1, and both new places are printed."""
    old_keras = _digest(layout.keras_path("saved_models", "danet_quickstart"))
    old_run = json.loads((workdir / EXPORTS / "config.json").read_text())["run"]
    capsys.readouterr()
    train.main([*TINY, "--restart", "--set", "model.dropout=0.25"])
    out = capsys.readouterr().out
    moved_run = next(p for p in os.listdir("runs") if p.startswith("danet_quickstart.previous-"))
    moved_exports = next(p for p in os.listdir("saved_models")
                         if p.startswith("danet_quickstart.previous-"))
    assert f"the previous run moved to {os.path.join('runs', moved_run)}" in out
    assert f"its exports moved to {os.path.join('saved_models', moved_exports)}" in out
    aside = workdir / "saved_models" / moved_exports
    assert _digest(aside / "danet_quickstart.keras") == old_keras
    assert json.loads((aside / "config.json").read_text())["run"] == old_run
    assert old_run["model_dir"] == RUN and (workdir / "runs" / moved_run / "best.json").exists()
    new = json.loads((workdir / EXPORTS / "config.json").read_text())
    assert new["model"]["dropout"] == 0.25 and new["run"]["id"] != old_run["id"]
    assert _versions(workdir / EXPORTS) == ["1"]


def test_the_quick_start_ends_with_a_prediction_and_attention_pictures(finished_run):
    import numpy as np
    from PIL import Image

    examples = finished_run / RUN / "examples"
    classes = np.asarray(Image.open(examples / "scene_classes.png"))
    assert classes.shape == (256, 256) and classes.max() < 6
    for picture in ("scene_color.png", "scene_overlay.png", "attention/sheet.png"):
        assert Image.open(examples / picture).size[0] >= 256, picture


def test_another_run_under_the_same_name_is_refused(workdir, capsys):
    before = _tree(workdir / "saved_models")
    err = _fails_with_one_line(capsys, train.main, [*TINY, "--model-dir", "runs/other"])
    owner = json.loads((workdir / EXPORTS / "config.json").read_text())["run"]["id"]
    assert EXPORTS in err and owner in err and "--restart" in err
    assert not os.path.exists("runs/other")
    assert _tree(workdir / "saved_models") == before


@pytest.mark.parametrize("intent", [[], ["--restart"]])
def test_a_missing_data_directory_is_named_before_anything_moves(workdir, capsys, intent):
    before = {folder: _tree(workdir / folder) for folder in ("runs", "saved_models")}
    missing = str(workdir / "no_such_data")
    err = _fails_with_one_line(capsys, train.main, [
        *TINY, *intent, "--set", "data.source=folder", "--set", f"data.root={missing}"])
    assert missing in err and "checkpoints of another run" not in err
    assert {folder: _tree(workdir / folder) for folder in before} == before


# A typo in each field whose values a registry holds, and what the line names.
TYPOS = [("train.optimizer=sgdd", "train.optimizer must be one of sgd, adamw"),
         ("train.export_formats=[keras, saved_modle]", "train.export_formats must be one of"),
         ("data.on_bad_example=ignore", "data.on_bad_example must be one of raise, skip"),
         ("model.head=danett", "model.head must be one of"),
         ("train.frozen_gammas=[cam, sam]", "train.frozen_gammas must be one of pam, cam")]


@pytest.mark.parametrize("intent", [[], ["--restart"]], ids=["same run", "restart"])
@pytest.mark.parametrize("typo, words", TYPOS, ids=[t.split("=")[0] for t, _ in TYPOS])
def test_a_typo_is_named_before_anything_moves(workdir, capsys, intent, typo, words):
    before = {folder: _tree(workdir / folder) for folder in ("runs", "saved_models")}
    err = _fails_with_one_line(capsys, train.main, [*TINY, *intent, "--set", typo])
    assert words in err and typo.split("=")[1].strip("[]").split(", ")[-1] in err
    assert {folder: _tree(workdir / folder) for folder in before} == before
    assert sorted(os.listdir(workdir / "runs")) == ["danet_quickstart"]


def test_class_names_must_match_the_class_count(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    err = _fails_with_one_line(capsys, train.main,
                               [*TINY, "--set", "data.class_names=[ground, object]"])
    assert "data.class_names has 2 names but data.num_classes is 6" in err
    assert not (tmp_path / "runs").exists()


def test_a_finished_run_reruns_without_exporting_again(workdir, capsys):
    before = _tree(workdir / "saved_models")
    capsys.readouterr()
    summary = train.main(TINY)
    out = capsys.readouterr().out
    assert not summary["trained"] and summary["exports"] == {}
    assert "already holds epoch 1 of this run: nothing new to export" in out
    assert _tree(workdir / "saved_models") == before
    train.main([*TINY, "--export"])
    assert _versions(workdir / EXPORTS) == ["1", "2"]


def test_the_exported_epoch_is_the_printed_best_and_evaluates_to_it(workdir, capsys):
    best = json.loads((workdir / RUN / "best.json").read_text())
    exported = json.loads((workdir / EXPORTS / "config.json").read_text())["run"]
    assert (exported["epoch"], exported["val_miou"]) == (best["epoch"], best["miou"])
    scores = evaluate.main(["--model", layout.keras_path("saved_models", "danet_quickstart"),
                            "--precision", "float32"])
    assert scores["miou"] == pytest.approx(best["miou"], abs=1e-9)
    assert scores["pixel_accuracy"] == pytest.approx(best["pixel_accuracy"], abs=1e-9)


def test_the_table_puts_the_exported_best_next_to_the_last_epoch(capsys):
    from danet_tf.config import load_config
    from danet_tf.train.trainer import RunResult

    def record(epoch, miou):
        return {"epoch": epoch, "miou": miou, "pixel_accuracy": 0.5,
                "per_class_iou": [miou, None, 0.25, 0.5, 0.5, 0.5]}

    result = RunResult("tensorflow", 1, 3, 30, 0, 0, True, 1.0, 0.5, record(2, 0.75),
                       record(3, 0.625), "best-2.weights.h5", (), "runs/x", True)
    train.print_result(load_config(), result, {})
    out = capsys.readouterr().out
    assert "| class | best: epoch 2 (the exported model) | last: epoch 3 |" in out
    assert "| background | 0.7500 | 0.6250 |" in out
    assert "| horizontal_stripes | n/a | n/a |" in out
    assert "| **mIoU** | **0.7500** | **0.6250** |" in out


def test_export_takes_the_next_free_version_as_training_does(workdir, capsys):
    keras_path = layout.keras_path("saved_models", "danet_quickstart")
    report = export_cli.main(["--model", keras_path, "--formats", "saved_model"])
    assert report["saved_model"]["path"] == os.path.join(EXPORTS, "2")
    err = _fails_with_one_line(capsys, export_cli.main,
                               ["--model", keras_path, "--formats", "saved_model",
                                "--version", "1"])
    assert os.path.join(EXPORTS, "1") in err and "--overwrite" in err


@pytest.mark.lane("processes")
def test_ctrl_c_says_where_the_checkpoint_is_and_the_same_command_resumes(tmp_path,
                                                                          monkeypatch, capsys):
    args = [sys.executable, os.path.join(ROOT, "training", "train.py"), *TINY,
            "--set", "train.epochs=1000"]  # far more than the test waits for
    stdout = open(tmp_path / "stdout.txt", "w")
    process = subprocess.Popen(args, cwd=tmp_path, stdout=stdout,
                               stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "KERAS_BACKEND": "tensorflow"})
    state = tmp_path / RUN / "checkpoint" / "state.json"
    deadline = time.time() + 300
    while not state.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert state.exists(), process.stderr.read()[-3000:] if process.poll() else "timeout"
    assert process.poll() is None, "the run ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    stdout.close()
    assert process.returncode == 130, (err[-3000:], (tmp_path / "stdout.txt").read_text()[-3000:])
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    epoch = json.loads(state.read_text())["epoch"]
    assert last.startswith(f"interrupted: the last checkpoint is epoch {epoch} (")
    assert last.endswith("run the same command again to resume.")
    monkeypatch.chdir(tmp_path)  # the same command (in process), one epoch further
    summary = train.main([*TINY, "--set", f"train.epochs={epoch + 1}"])
    assert summary["resumed_at_epoch"] == epoch and summary["steps"] == epoch + 1
    assert f"resumed from {os.path.join(RUN, 'checkpoint', f'ckpt-{epoch}.weights.h5')}" \
        in capsys.readouterr().out


def test_the_documented_layout_is_the_written_one(capsys):
    """saved_models/README.md and `danet-export --help` show `layout.LAYOUT`."""
    readme = open(os.path.join(ROOT, "saved_models", "README.md")).read()
    for path, _ in layout.LAYOUT:
        assert path.format(name="<name>") in readme, path
    with pytest.raises(SystemExit):
        export_cli.parse_args(["--help"])
    assert layout.describe() in capsys.readouterr().out
