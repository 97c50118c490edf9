"""Checkpoints and the best model: atomic, resumable, never replaced by a worse epoch."""

import json
import os

import keras
import numpy as np

from danet_tf.train.callbacks import BestModel, CollapseWarning, ResumableCheckpoint
from danet_tf.train.run_directory import RunDirectory


class FixedScores:
    """Stands in for `SegmentationMetric`: returns the next mIoU of a list."""

    def __init__(self, mious):
        self.mious = list(mious)

    def scores(self):
        miou = self.mious.pop(0)
        return {"miou": miou, "pixel_accuracy": miou, "per_class_iou": np.array([miou])}


def _tiny_model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    return model


def _epochs(callback, model, mious, first_epoch=0):
    callback.set_model(model)
    for epoch, _ in enumerate(mious, start=first_epoch):
        model.layers[0].bias.assign([float(epoch)])  # tells the epochs' weights apart
        callback.on_epoch_end(epoch, {"val_loss": 1.0})


def test_best_model_survives_a_restart_and_a_worse_epoch(tmp_path):
    run = str(tmp_path)
    model = _tiny_model()
    _epochs(BestModel(FixedScores([0.3, 0.5]), ["c"], run), model, [0.3, 0.5])
    assert RunDirectory(run).best()["miou"] == 0.5 and RunDirectory(run).best()["epoch"] == 2
    # A new process (a rerun after kill -9) starts from the recorded score:
    # a worse epoch leaves the best model alone, a better one replaces it.
    restarted = BestModel(FixedScores([0.4, 0.45, 0.7]), ["c"], run)
    assert restarted.best == 0.5
    _epochs(restarted, model, [0.4, 0.45], first_epoch=2)
    files = RunDirectory(run)
    assert files.best() == {"miou": 0.5, "pixel_accuracy": 0.5, "per_class_iou": [0.5],
                            "epoch": 2, "weights": "best-2.weights.h5"}
    assert files.last() == {"miou": 0.45, "pixel_accuracy": 0.45, "per_class_iou": [0.45],
                            "epoch": 4}
    _epochs(restarted, model, [0.7], first_epoch=4)
    assert RunDirectory(run).best()["epoch"] == 5
    assert sorted(f for f in os.listdir(run) if f.startswith("best-")) == ["best-5.weights.h5"]
    reloaded = _tiny_model()
    reloaded.load_weights(RunDirectory(run).best_weights())
    assert float(keras.ops.convert_to_numpy(reloaded.layers[0].bias)[0]) == 4.0


def test_checkpoint_restores_weights_optimizer_state_and_epoch(tmp_path):
    model = _tiny_model()
    x, y = np.ones((4, 2), "float32"), np.zeros((4, 1), "float32")
    model.fit(x, y, epochs=1, verbose=0)  # momentum buffers and iterations are non-zero
    checkpoint = ResumableCheckpoint(str(tmp_path), model, max_to_keep=2)
    for epoch in range(3):
        checkpoint.on_epoch_end(epoch)
    state = json.loads((tmp_path / "checkpoint" / "state.json").read_text())
    assert state == {"epoch": 3, "weights": "ckpt-3.weights.h5"}
    assert sorted(os.listdir(tmp_path / "checkpoint")) == [
        "ckpt-2.weights.h5", "ckpt-3.weights.h5", "state.json"]
    fresh = _tiny_model()
    assert ResumableCheckpoint(str(tmp_path), fresh).restore() == 3
    for saved, restored in zip(model.weights + model.optimizer.variables,
                               fresh.weights + fresh.optimizer.variables):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(restored),
                                      keras.ops.convert_to_numpy(saved))
    assert int(keras.ops.convert_to_numpy(fresh.optimizer.iterations)) == 1
    assert ResumableCheckpoint(str(tmp_path / "empty"), _tiny_model()).restore() == 0


def test_a_collapsing_run_is_told_in_one_line_and_goes_on(tmp_path, capsys):
    best = BestModel(FixedScores([0.2, 0.6, 0.5, 0.25, 0.7]), ["c"], str(tmp_path))
    watch = CollapseWarning(best)
    best.set_model(_tiny_model())
    # (loss, validated): falls, falls, rises (epoch 3), falls, falls with mIoU
    # 0.25 < half of 0.6 (epoch 4), then recovers.
    losses = [3.0, 2.0, 2.5, 1.5, 1.0]
    for epoch, loss in enumerate(losses):
        logs = {"loss": loss, "val_loss": 1.0}
        best.on_epoch_end(epoch, logs)
        watch.on_epoch_end(epoch, logs)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning")]
    assert len(lines) == 2
    assert lines[0].startswith("warning: epoch 3: the training loss rose over the whole epoch "
                               "(2.0000 -> 2.5000)") and "train.main_losses=mean" in lines[0]
    assert lines[1].startswith("warning: epoch 4: val mIoU 0.2500 is below half the best (0.6000)")
    # The first epoch after the first one is compared; the first is not.
    fresh = CollapseWarning(BestModel(FixedScores([]), ["c"], str(tmp_path / "b")))
    assert fresh.signs(0, 9.0, False) == [] and fresh.signs(1, 9.5, False) != []
