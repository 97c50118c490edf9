"""A run refuses to resume a directory that holds another model's checkpoints."""

import json
import os

import pytest

from danet_tf.config import load_config
from danet_tf.train.run_directory import prepare_run_directory


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
    prepare_run_directory(again)
    prepare_run_directory(again, "resume")


def test_other_model_or_data_is_refused_naming_both(tmp_path):
    _previous_run(tmp_path)
    other = load_config(overrides=[f"train.model_dir={tmp_path / 'run'}", "data.source=folder",
                                   "data.num_classes=3"])
    with pytest.raises(ValueError) as info:
        prepare_run_directory(other)
    message = str(info.value)
    assert str(tmp_path / "run" / "config.json") in message
    assert "data.num_classes: 6 -> 3" in message
    assert "data.source: 'synthetic' -> 'folder'" in message
    assert "--restart" in message


def test_resume_needs_a_checkpoint_and_restart_keeps_the_old_run(tmp_path):
    fresh = load_config(overrides=[f"train.model_dir={tmp_path / 'empty'}"])
    with pytest.raises(ValueError, match="no checkpoint"):
        prepare_run_directory(fresh, "resume")
    _previous_run(tmp_path)
    other = load_config(overrides=[f"train.model_dir={tmp_path / 'run'}",
                                   "model.backbone=resnet50"])
    prepare_run_directory(other, "restart")
    assert not (tmp_path / "run").exists()
    moved = [p for p in os.listdir(tmp_path) if p.startswith("run.previous-")]
    assert len(moved) == 1
    assert (tmp_path / moved[0] / "checkpoint" / "state.json").exists()
