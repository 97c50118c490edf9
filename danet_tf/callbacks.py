"""Training callbacks: resumable atomic checkpoints, best-model tracking, progress."""

import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

from danet_tf.metrics import format_scores_table


def atomic_save_weights(model, path):
    """`model.save_weights(path)` through a temporary file and a rename."""
    tmp = f"{path[: -len('.weights.h5')]}.tmp-{os.getpid()}.weights.h5"
    model.save_weights(tmp)
    os.replace(tmp, path)


class ResumableCheckpoint(keras.callbacks.Callback):
    """Saves model + optimizer + epoch with `tf.train.CheckpointManager` each epoch.

    TF checkpoints are written to temporary files and renamed into place, so
    a killed run leaves the previous checkpoint intact. `restore()` returns
    the epoch to resume at. On non-chief workers of a multi-worker run the
    files go to a scratch directory (all workers must take part in saving).

    Args:
        model_dir: str. Checkpoint directory.
        model: the compiled `keras.Model`.
        is_chief: bool.
        max_to_keep: int.
    """

    def __init__(self, model_dir, model, is_chief=True, worker_id=0, max_to_keep=2):
        super().__init__()
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.best_miou = tf.Variable(-1.0, dtype=tf.float64, trainable=False, name="best_miou")
        directory = model_dir if is_chief else os.path.join(model_dir, f".worker_{worker_id}")
        self._scratch = None if is_chief else directory
        self.checkpoint = tf.train.Checkpoint(
            model=model, optimizer=model.optimizer, epoch=self.epoch, best_miou=self.best_miou
        )
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep)

    def restore(self):
        """Restores the latest checkpoint if any; returns the epoch to start at."""
        latest = self.manager.latest_checkpoint
        if latest:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
        return int(self.epoch.numpy())

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.assign(epoch + 1)
        self.manager.save(checkpoint_number=epoch + 1)
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)


class BestModel(keras.callbacks.Callback):
    """Keeps the weights of the best validation mIoU (`best.weights.h5`, atomic).

    Also prints the per-class IoU table after each validation and writes the
    per-class IoUs and pixel accuracy to TensorBoard.
    """

    def __init__(self, metric, class_names, model_dir, best_variable, is_chief=True,
                 log_dir=None):
        super().__init__()
        self.metric = metric
        self.class_names = class_names
        self.path = os.path.join(model_dir, "best.weights.h5")
        self.best = best_variable
        self.is_chief = is_chief
        self.last_scores = None
        self.writer = tf.summary.create_file_writer(log_dir) if (log_dir and is_chief) else None

    def on_epoch_end(self, epoch, logs=None):
        if not logs or "val_loss" not in logs:
            return
        scores = self.metric.scores()
        self.last_scores = scores
        logs["val_pixel_accuracy"] = scores["pixel_accuracy"]
        if self.writer:
            with self.writer.as_default(step=epoch + 1):
                tf.summary.scalar("val/miou", scores["miou"])
                tf.summary.scalar("val/pixel_accuracy", scores["pixel_accuracy"])
                for name, iou in zip(self.class_names, scores["per_class_iou"]):
                    if not np.isnan(iou):
                        tf.summary.scalar(f"val_iou/{name}", iou)
        if scores["miou"] > float(self.best.numpy()):
            self.best.assign(scores["miou"])
            if self.is_chief:
                atomic_save_weights(self.model, self.path)
        if self.is_chief:
            print(f"\nepoch {epoch + 1}: val mIoU {scores['miou']:.4f}, pixel accuracy "
                  f"{scores['pixel_accuracy']:.4f} (best {float(self.best.numpy()):.4f})")


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


def print_scores(scores, class_names):
    print(format_scores_table(scores, class_names))
