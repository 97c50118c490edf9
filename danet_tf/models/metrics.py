"""Confusion-matrix segmentation metrics, shared by training and deployment:
the confusion matrix of one batch (`keras.ops`, any backend), the scores of an
accumulated matrix (mIoU, pixel accuracy, per-class IoU), their table, and the
Keras metric `SegmentationMetric` that `DANet.compile()` uses."""

import keras
import numpy as np
from keras import ops

from danet_tf.models.losses import IGNORE_LABEL


def confusion_matrix(labels, predictions, num_classes, ignore_label=IGNORE_LABEL):
    """`(num_classes, num_classes)` counts, rows = truth, columns = prediction."""
    labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
    predictions = ops.reshape(ops.cast(predictions, "int32"), (-1,))
    valid = ops.logical_and(ops.not_equal(labels, ignore_label), labels < num_classes)
    index = ops.where(valid, labels * num_classes + predictions, 0)
    # segment_sum (a scatter-add) also compiles under XLA, unlike bincount.
    counts = ops.segment_sum(ops.cast(valid, "float32"), index, num_segments=num_classes**2)
    return ops.reshape(counts, (num_classes, num_classes))


def segmentation_scores(confusion):
    """Scores of a confusion matrix (NumPy).

    Returns:
        dict with `miou` (mean over classes that occur in truth or prediction),
        `pixel_accuracy` (correct / labelled pixels) and `per_class_iou`
        (NaN for classes absent from both).
    """
    confusion = np.asarray(confusion, np.float64)
    intersection = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, intersection / union, np.nan)
    total = confusion.sum()
    return {
        "miou": float(np.nanmean(iou)) if np.any(union > 0) else 0.0,
        "pixel_accuracy": float(intersection.sum() / total) if total else 0.0,
        "per_class_iou": iou,
    }


def score_record(scores, class_names=None):
    """`segmentation_scores` as JSON values, the one record every command
    writes: `miou`, `pixel_accuracy` and `per_class_iou` (a list, or by name
    with `class_names`), a class absent from truth and prediction as `None`."""
    per_class = [None if np.isnan(v) else float(v) for v in scores["per_class_iou"]]
    if class_names is not None:
        per_class = dict(zip(class_names, per_class))
    return {"miou": float(scores["miou"]), "pixel_accuracy": float(scores["pixel_accuracy"]),
            "per_class_iou": per_class}


def scores_of_record(record):
    """A `score_record` (list form) back as scores (`None` -> NaN), for tables."""
    return {"miou": record["miou"], "pixel_accuracy": record["pixel_accuracy"],
            "per_class_iou": np.array([np.nan if v is None else v
                                       for v in record["per_class_iou"]])}


def format_scores_table(scores, class_names, header="IoU"):
    """A markdown table of per-class IoU followed by mIoU and pixel accuracy."""
    return format_scores_columns({header: scores}, class_names)


def format_scores_columns(columns, class_names):
    """`format_scores_table` with one column per `{header: scores}` entry."""
    def cell(value):
        return "n/a" if np.isnan(value) else f"{value:.4f}"

    lines = ["| class | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for index, name in enumerate(class_names):
        lines.append(f"| {name} | "
                     + " | ".join(cell(s["per_class_iou"][index]) for s in columns.values())
                     + " |")
    lines.append("| **mIoU** | " + " | ".join(f"**{s['miou']:.4f}**" for s in columns.values())
                 + " |")
    lines.append("| pixel accuracy | "
                 + " | ".join(f"{s['pixel_accuracy']:.4f}" for s in columns.values()) + " |")
    return "\n".join(lines)


def _count_dtype():
    """float64 where the backend has it by default; JAX (no x64) counts in int32."""
    if keras.backend.backend() == "jax":
        import jax

        return "float64" if jax.config.jax_enable_x64 else "int32"
    return "float64"


@keras.saving.register_keras_serializable(package="danet_tf")
class SegmentationMetric(keras.metrics.Metric):
    """Accumulates a confusion matrix over batches; `result()` is mIoU.

    Args:
        num_classes: int.
        ignore_label: int. Excluded pixels. Defaults to `255`.

    `update_state(y_true (B, H, W), y_pred (B, H, W, C) logits)`. The matrix
    is a float64 variable (exact up to 2**53 pixels per cell; int32, exact
    up to 2**31, on JAX, which has no float64 unless `jax_enable_x64`) summed
    across replicas; `scores()` gives all numbers.

    Keras' `MeanIoU(ignore_class=255)` computes the same mIoU from argmax
    predictions but counts in float32 (exact only up to 2**24 pixels per
    cell, 16 full-resolution Cityscapes images) and has no per-class table.
    """

    def __init__(self, num_classes, ignore_label=IGNORE_LABEL, name="miou", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = int(num_classes)
        self.ignore_label = int(ignore_label)
        self.confusion = self.add_variable(
            shape=(self.num_classes, self.num_classes), initializer="zeros",
            dtype=_count_dtype(), aggregation="sum", name="confusion",
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        predictions = ops.argmax(y_pred, axis=-1)
        batch = confusion_matrix(y_true, predictions, self.num_classes, self.ignore_label)
        self.confusion.assign_add(ops.cast(batch, self.confusion.dtype))

    def result(self):
        confusion = ops.cast(self.confusion, "float32")
        intersection = ops.diagonal(confusion)
        union = ops.sum(confusion, 0) + ops.sum(confusion, 1) - intersection
        present = ops.cast(union > 0, "float32")
        iou = intersection / ops.maximum(union, 1.0)
        return ops.sum(iou * present) / ops.maximum(ops.sum(present), 1.0)

    def scores(self):
        return segmentation_scores(ops.convert_to_numpy(self.confusion))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "ignore_label": self.ignore_label}
