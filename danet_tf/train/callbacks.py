"""Training callbacks: resumable atomic checkpoints, best-model tracking, progress.

Backend-agnostic: checkpoints are Keras `.weights.h5` files (model and
optimizer state) plus a small JSON, so a run resumes the same way on the
TensorFlow and JAX backends.
"""

import json
import os
import time

import keras
import numpy as np

from danet_tf.files import atomic_path, write_text
from danet_tf.models.metrics import score_record
from danet_tf.train.run_directory import RunDirectory, read_json


def epoch_record(scores, epoch):
    """`scores` of `epoch` as `last.json` / `best.json` hold them."""
    return {"epoch": int(epoch), **score_record(scores)}


class ResumableCheckpoint(keras.callbacks.Callback):
    """Saves model + optimizer state and the epoch after every epoch.

    `checkpoint/ckpt-<epoch>.weights.h5` (Keras' weights file, which holds
    the optimizer's variables too) is written atomically, then
    `checkpoint/state.json` names it, also atomically: a run killed at any
    point resumes from the last complete epoch. `restore()` returns the
    epoch to resume at. Only the chief writes (no collective is needed to
    read replicated variables).

    Keras' `BackupAndRestore` does the same job but writes its weights and
    its metadata non-atomically (a kill between them resumes from the wrong
    epoch) and deletes the backup when training ends, so a finished run
    cannot be extended.

    Args:
        model_dir: str. The run directory.
        model: the compiled `keras.Model`.
        is_chief: bool.
        max_to_keep: int. Checkpoints kept.
    """

    def __init__(self, model_dir, model, is_chief=True, max_to_keep=2):
        super().__init__()
        run = RunDirectory(model_dir)
        self.directory = run.checkpoint_dir
        self.state_path = run.checkpoint_state
        self.trained_model = model
        self.is_chief = is_chief
        self.max_to_keep = max_to_keep

    @property
    def latest(self):
        """Path of the latest complete checkpoint, or `None`."""
        state = read_json(self.state_path)
        return os.path.join(self.directory, state["weights"]) if state else None

    def restore(self):
        """Restores the latest checkpoint if any; returns the epoch to start at."""
        state = read_json(self.state_path)
        if not state:
            return 0
        if not self.trained_model.optimizer.built:
            self.trained_model.optimizer.build(self.trained_model.trainable_variables)
        self.trained_model.load_weights(os.path.join(self.directory, state["weights"]))
        return int(state["epoch"])

    def on_epoch_end(self, epoch, logs=None):
        if not self.is_chief:
            return
        name = f"ckpt-{epoch + 1}.weights.h5"
        with atomic_path(os.path.join(self.directory, name)) as tmp:
            self.trained_model.save_weights(tmp)
        write_text(self.state_path, json.dumps({"epoch": epoch + 1, "weights": name}))
        kept = sorted((f for f in os.listdir(self.directory)
                       if f.startswith("ckpt-") and f.endswith(".weights.h5")),
                      key=lambda f: int(f[len("ckpt-"):-len(".weights.h5")]))
        for old in kept[: -self.max_to_keep]:
            os.remove(os.path.join(self.directory, old))


class BestModel(keras.callbacks.Callback):
    """Keeps the weights of the best validation mIoU in `model_dir`.

    `best-<epoch>.weights.h5` is written atomically, then `best.json` (its
    scores, epoch and weights file) is replaced atomically to point at it, and only
    then the previous best file is removed: after a crash the recorded score
    always belongs to the weights it names, and a rerun starts from that
    score, so a later, worse epoch never replaces the best model. Also prints the
    epoch's scores after each validation, keeps the last validation in
    `last.json`, and writes the per-class IoUs and pixel accuracy to
    TensorBoard.

    Keras' `ModelCheckpoint(save_best_only=True)` forgets its best score
    when a run restarts (the first epoch after a resume always overwrites
    the best file) and writes the file in place.
    """

    def __init__(self, metric, class_names, model_dir, is_chief=True, log_dir=None):
        super().__init__()
        self.metric = metric
        self.class_names = class_names
        self.model_dir = model_dir
        self.run = RunDirectory(model_dir)
        saved = self.run.best()
        self.best = saved["miou"] if saved else -1.0
        self.is_chief = is_chief
        self.last_scores = None
        self.writer = None
        if log_dir and is_chief:
            import tensorflow as tf  # TensorBoard's writer, on every backend

            self.writer = tf.summary.create_file_writer(log_dir)

    def on_epoch_end(self, epoch, logs=None):
        if not logs or "val_loss" not in logs:
            return
        self.record(self.metric.scores(), epoch + 1)
        logs["val_pixel_accuracy"] = self.last_scores["pixel_accuracy"]

    def record(self, scores, epoch):
        """Takes the validation `scores` of `epoch` (1-based): logs them and
        saves the model if it is the best so far. Also used for the final
        evaluation of a run that never validated during `fit`."""
        self.last_scores = scores
        # Every worker: each decides alike whether a final evaluation is due.
        write_text(self.run.last_file,
                   json.dumps(epoch_record(scores, epoch)))
        if self.writer:
            self._write_summaries(scores, epoch)
        if scores["miou"] > self.best:
            self.best = scores["miou"]
            if self.is_chief:
                self._save(scores, epoch)
        if self.is_chief:
            print(f"\nepoch {epoch}: val mIoU {scores['miou']:.4f}, pixel accuracy "
                  f"{scores['pixel_accuracy']:.4f} (best {self.best:.4f})")

    def _save(self, scores, epoch):
        previous = self.run.best_weights()
        name = f"best-{epoch}.weights.h5"
        with atomic_path(os.path.join(self.model_dir, name)) as tmp:
            self.model.save_weights(tmp)
        record = {**epoch_record(scores, epoch), "weights": name}
        write_text(self.run.best_file, json.dumps(record))
        if previous and os.path.basename(previous) != name and os.path.exists(previous):
            os.remove(previous)

    def _write_summaries(self, scores, step):
        import tensorflow as tf

        with self.writer.as_default(step=step):
            tf.summary.scalar("val/miou", scores["miou"])
            tf.summary.scalar("val/pixel_accuracy", scores["pixel_accuracy"])
            for name, iou in zip(self.class_names, scores["per_class_iou"]):
                if not np.isnan(iou):
                    tf.summary.scalar(f"val_iou/{name}", iou)


COLLAPSE_ADVICE = ("try train.main_losses=mean (the backbone then gets one loss's gradient) "
                   "or a third of train.learning_rate with 3x train.head_lr_multiplier "
                   "(docs/ablation.md, fine-tuning)")


class CollapseWarning(keras.callbacks.Callback):
    """Says in one line, and keeps training, when a run looks like it is
    collapsing: its mean training loss of an epoch (after the first) is above
    the epoch before's, or its val mIoU falls below half its best so far
    (`best`, the run's `BestModel`). DANet fine-tuned from pretrained weights
    on a small data set can do both (docs/ablation.md)."""

    def __init__(self, best, is_chief=True):
        super().__init__()
        self.best = best
        self.is_chief = is_chief
        self.previous_loss = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        for line in self.signs(epoch, logs.get("loss"), logs.get("val_loss") is not None):
            if self.is_chief:
                print(f"warning: epoch {epoch + 1}: {line}; {COLLAPSE_ADVICE}.")

    def signs(self, epoch, loss, validated):
        """The warnings of epoch `epoch` (0-based) with mean training `loss`."""
        signs = []
        if loss is not None and self.previous_loss is not None and epoch >= 1 \
                and loss > self.previous_loss:
            signs.append(f"the training loss rose over the whole epoch "
                         f"({self.previous_loss:.4f} -> {loss:.4f})")
        if loss is not None:
            self.previous_loss = float(loss)
        last = self.best.last_scores
        if validated and last is not None and last["miou"] < 0.5 * self.best.best:
            signs.append(f"val mIoU {last['miou']:.4f} is below half the best "
                         f"({self.best.best:.4f})")
        return signs


class Throughput(keras.callbacks.Callback):
    """Adds `lr` and `images_per_s` to the batch logs shown by the progress bar."""

    def __init__(self, global_batch_size):
        super().__init__()
        self.global_batch_size = global_batch_size
        self._start = None
        self.rates = []

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if logs is None or self._start is None:
            return
        rate = self.global_batch_size / max(time.perf_counter() - self._start, 1e-9)
        self.rates.append(rate)
        logs["images_per_s"] = float(np.median(self.rates[-20:]))
        optimizer = self.model.optimizer
        logs["lr"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))

