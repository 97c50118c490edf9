"""The Keras mIoU metric of training (its scores come from `danet_tf.scores`)."""

import keras
from keras import ops

from danet_tf.data.catalog import IGNORE_LABEL
from danet_tf.scores import confusion_matrix, segmentation_scores


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
