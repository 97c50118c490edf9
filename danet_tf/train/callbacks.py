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

BEST_SCORE = "best.json"  # the best validation: its scores, epoch and weights file
LAST_SCORE = "last.json"  # the last validation: its scores and epoch


def read_json(path, default=None):
    """The JSON object in `path`, or `default` when there is no such file."""
    if not os.path.isfile(path):
        return default
    with open(path) as f:
        return json.load(f)


def best_score(model_dir):
    """`{"miou", "epoch", "weights"}` of the best model in `model_dir`, or `None`."""
    return read_json(os.path.join(model_dir, BEST_SCORE))


def latest_checkpoint(model_dir):
    """`(epoch, path)` of the last complete epoch checkpoint, or `None`."""
    state = read_json(os.path.join(model_dir, "checkpoint", "state.json"))
    if not state:
        return None
    return int(state["epoch"]), os.path.join(model_dir, "checkpoint", state["weights"])


def last_score(model_dir):
    """`{"miou", "pixel_accuracy", "per_class_iou", "epoch"}` of the last
    validation in `model_dir`, or `None`."""
    return read_json(os.path.join(model_dir, LAST_SCORE))


def score_record(scores, epoch):
    """`scores` (from `segmentation_scores`) of `epoch` as JSON values (NaN: `None`)."""
    return {"epoch": int(epoch), "miou": float(scores["miou"]),
            "pixel_accuracy": float(scores["pixel_accuracy"]),
            "per_class_iou": [None if np.isnan(v) else float(v)
                              for v in scores["per_class_iou"]]}


def as_scores(record):
    """A `score_record` back as scores (`None` -> NaN), for tables."""
    return {"miou": record["miou"], "pixel_accuracy": record["pixel_accuracy"],
            "per_class_iou": np.array([np.nan if v is None else v
                                       for v in record["per_class_iou"]])}


def best_weights_path(model_dir):
    """The best model's `.weights.h5` in `model_dir`, or `None`."""
    saved = best_score(model_dir)
    return os.path.join(model_dir, saved["weights"]) if saved else None


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
        self.directory = os.path.join(model_dir, "checkpoint")
        self.state_path = os.path.join(self.directory, "state.json")
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
        saved = best_score(model_dir)
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
        write_text(os.path.join(self.model_dir, LAST_SCORE),
                   json.dumps(score_record(scores, epoch)))
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
        previous = best_weights_path(self.model_dir)
        name = f"best-{epoch}.weights.h5"
        with atomic_path(os.path.join(self.model_dir, name)) as tmp:
            self.model.save_weights(tmp)
        record = {**score_record(scores, epoch), "weights": name}
        write_text(os.path.join(self.model_dir, BEST_SCORE), json.dumps(record))
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

