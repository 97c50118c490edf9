"""What a run says before its first step, and the warnings it gives."""

import logging

import pytest
from helpers import make_folder_dataset

from danet_tf.config import load_config
from danet_tf.train.run_summary import run_warnings


def test_long_warm_up_is_warned_about():
    config = load_config(overrides=["train.epochs=1", "train.steps_per_epoch=100",
                                    "train.warmup_steps=50"])
    assert any("warmup_steps=50" in w and "tenth" in w for w in run_warnings(config))
    config = load_config(overrides=["train.warmup_steps=10"])  # 10 of 600 steps
    assert not run_warnings(config)


def test_more_classes_than_the_masks_hold_is_warned_about(tmp_path):
    make_folder_dataset(str(tmp_path), "train", count=3, num_classes=3)  # ids 0..2
    config = load_config(overrides=["data.source=folder", f"data.root={tmp_path}",
                                    "data.num_classes=6", "train.warmup_steps=0"])
    (warning,) = run_warnings(config)
    assert "data.num_classes=6" in warning and "largest class id" in warning
    assert "data.num_classes=3" in warning
    config = load_config(overrides=["data.source=folder", f"data.root={tmp_path}",
                                    "data.num_classes=3", "train.warmup_steps=0"])
    assert not run_warnings(config)


@pytest.mark.slow
def test_pipelines_give_autograph_nothing_to_warn_about(tmp_path, caplog):
    from danet_tf.data.pipeline import build_eval_dataset, build_train_dataset

    make_folder_dataset(str(tmp_path), "train", count=2, size=(40, 40), num_classes=3)
    make_folder_dataset(str(tmp_path), "val", count=2, size=(40, 40), num_classes=3)
    config = load_config(overrides=["data.source=folder", f"data.root={tmp_path}",
                                    "data.num_classes=3", "data.crop_size=[32, 32]",
                                    "data.batch_size=2"])
    with caplog.at_level(logging.WARNING):
        next(iter(build_train_dataset(config.data)))
        next(iter(build_eval_dataset(config.data)))
    assert not [r for r in caplog.records if "AutoGraph" in r.getMessage()]
