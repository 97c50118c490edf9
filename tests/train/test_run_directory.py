"""A run refuses to resume a directory that holds another model's checkpoints."""

import json
import os

import pytest

from danet_tf.config import load_config
from danet_tf.train.run_directory import RunDirectory, check_run_directory, prepare_run_directory


def _previous_run(tmp_path, *overrides):
    config = load_config(overrides=[f"train.model_dir={tmp_path / 'run'}", *overrides])
    os.makedirs(tmp_path / "run" / "checkpoint")
    (tmp_path / "run" / "config.json").write_text(json.dumps(config.to_dict(), default=list))
    (tmp_path / "run" / "checkpoint" / "state.json").write_text('{"epoch": 1}')
    return config


def test_run_directory_defaults_from_the_run_name():
    assert load_config().train.model_dir == os.path.join("runs", "danet_quickstart")
    config = load_config(overrides=["train.name=mine"])
    assert config.train.model_dir == os.path.join("runs", "mine")


def test_same_model_and_data_resumes_even_with_more_epochs(tmp_path):
    _previous_run(tmp_path)
    again = load_config(overrides=[f"train.model_dir={tmp_path / 'run'}", "train.epochs=20",
                                   "data.eval_batch_size=2"])
    check_run_directory(again)
    check_run_directory(again, "resume")


def test_other_model_or_data_is_refused_naming_both(tmp_path):
    _previous_run(tmp_path)
    other = load_config(overrides=[f"train.model_dir={tmp_path / 'run'}", "data.source=folder",
                                   "data.num_classes=3"])
    with pytest.raises(ValueError) as info:
        check_run_directory(other)
    message = str(info.value)
    assert str(tmp_path / "run" / "config.json") in message
    assert "data.num_classes: 6 -> 3" in message
    assert "data.source: 'synthetic' -> 'folder'" in message
    assert "--restart" in message


def test_resume_needs_a_checkpoint_and_restart_keeps_the_old_run(tmp_path):
    fresh = load_config(overrides=[f"train.model_dir={tmp_path / 'empty'}"])
    with pytest.raises(ValueError, match="no checkpoint"):
        check_run_directory(fresh, "resume")
    _previous_run(tmp_path)
    other = load_config(overrides=[f"train.model_dir={tmp_path / 'run'}",
                                   "model.backbone=resnet50"])
    check_run_directory(other, "restart")
    moved = prepare_run_directory(other, "restart", stamp="20260101-000000")
    assert moved == str(tmp_path / "run.previous-20260101-000000")
    assert (tmp_path / moved / "checkpoint" / "state.json").exists()
    # The new run directory holds only the new run's id.
    assert os.listdir(tmp_path / "run") == ["run.json"]
    new_id = RunDirectory(str(tmp_path / "run")).run_id()
    assert new_id.startswith("danet_quickstart-20260101-000000-")
    # A second restart in the same second gets a place of its own.
    assert prepare_run_directory(other, "restart", stamp="20260101-000000").endswith("-2")
