"""Confusion-matrix scores shared by training and deployment: the confusion
matrix of one batch (`keras.ops`, any backend), mIoU, pixel accuracy and
per-class IoU of an accumulated matrix, and their table."""

import numpy as np
from keras import ops

from danet_tf.data.catalog import IGNORE_LABEL


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


def format_scores_table(scores, class_names):
    """A markdown table of per-class IoU followed by mIoU and pixel accuracy."""
    lines = ["| class | IoU |", "|---|---|"]
    for name, iou in zip(class_names, scores["per_class_iou"]):
        lines.append(f"| {name} | {'n/a' if np.isnan(iou) else f'{iou:.4f}'} |")
    lines.append(f"| **mIoU** | **{scores['miou']:.4f}** |")
    lines.append(f"| pixel accuracy | {scores['pixel_accuracy']:.4f} |")
    return "\n".join(lines)
