"""Segmentation cross-entropy with an ignore label and optional OHEM."""

import keras
from keras import ops

from danet_tf import recipe

# Pixels labelled so count in no loss and no metric (the official code maps 255 to -1).
IGNORE_LABEL = 255


@keras.saving.register_keras_serializable(package="danet_tf")
class SegmentationCrossEntropy(keras.losses.Loss):
    """Pixel-wise softmax cross-entropy averaged over labelled pixels.

    Matches PyTorch's `CrossEntropyLoss(ignore_index=255)`: pixels labelled
    `ignore_label` contribute nothing and the mean is over the others. Always
    computed in float32 (logits are cast first), so it is safe under mixed
    precision. With `ohem=True`, only hard pixels count: those whose
    probability of the true class is below `ohem_threshold`, and at least the
    `ohem_min_kept` hardest ones (mmseg's `OHEMPixelSampler`).

    Keras' `SparseCategoricalCrossentropy(from_logits=True, ignore_class=255)`
    gives the same plain mean (a test checks it) but offers no OHEM and
    computes float16 logits in float16, so this class stays.

    Args:
        ignore_label: int. Label excluded from the loss. Defaults to `255`.
        ohem: bool. Online hard example mining.
        ohem_threshold: float. Probability below which a pixel is hard.
        ohem_min_kept: int. Minimum number of pixels kept per batch.

    Call arguments:
        y_true: `(batch, height, width)` integer labels.
        y_pred: `(batch, height, width, num_classes)` logits.

    Returns:
        A scalar float32 loss.
    """

    def __init__(self, ignore_label=IGNORE_LABEL, ohem=False, ohem_threshold=0.7,
                 ohem_min_kept=100000, name="segmentation_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.ignore_label = int(ignore_label)
        self.ohem = bool(ohem)
        self.ohem_threshold = float(ohem_threshold)
        self.ohem_min_kept = int(ohem_min_kept)

    def call(self, y_true, y_pred):
        logits = ops.cast(y_pred, "float32")
        labels = ops.cast(y_true, "int32")
        valid = ops.not_equal(labels, self.ignore_label)
        safe_labels = ops.where(valid, labels, 0)
        ce = ops.sparse_categorical_crossentropy(safe_labels, logits, from_logits=True)
        weights = ops.cast(valid, "float32")
        if self.ohem:
            weights = weights * self._hard_pixels(ce, valid)
        return ops.sum(ce * weights) / ops.maximum(ops.sum(weights), 1.0)

    def _hard_pixels(self, ce, valid):
        """1 for pixels with p(true class) < max(threshold, k-th smallest p)."""
        prob = ops.exp(-ops.stop_gradient(ce))
        flat = ops.reshape(ops.where(valid, prob, 2.0), (-1,))
        num_valid = ops.sum(ops.cast(valid, "int32"))
        k = ops.clip(ops.minimum(self.ohem_min_kept, num_valid) - 1, 0, ops.size(flat) - 1)
        kth = ops.take(ops.sort(flat), k)
        threshold = ops.maximum(kth, self.ohem_threshold)
        return ops.cast(prob <= threshold, "float32")

    def get_config(self):
        return {
            **super().get_config(),
            "ignore_label": self.ignore_label,
            "ohem": self.ohem,
            "ohem_threshold": self.ohem_threshold,
            "ohem_min_kept": self.ohem_min_kept,
        }


# `train.main_losses`: how the main outputs' cross-entropies combine.
MAIN_LOSSES = ("sum", "mean")


def official_losses(output_names, aux_loss_weight=recipe.AUX_LOSS_WEIGHT, main_losses="sum",
                    **cross_entropy_kwargs):
    """The official loss: cross-entropy on every main output (DANet's fused,
    position and channel logits), weight 1 each (`main_losses="sum"`, the
    official recipe) or 1/n each (`"mean"`), and `aux_loss_weight` (mmseg's
    0.4) on `aux_logits`. Returns `(losses, loss_weights)` dicts for `compile`."""
    loss = SegmentationCrossEntropy(**cross_entropy_kwargs)
    losses = dict.fromkeys(output_names, loss)
    main = [k for k in losses if k != "aux_logits"]
    weight = 1.0 if main_losses == "sum" else 1.0 / len(main)
    weights = {k: (aux_loss_weight if k == "aux_logits" else weight) for k in losses}
    return losses, weights


def label_every_output(y, y_pred):
    """One mask for every output of a multi-output model, when given one."""
    if isinstance(y_pred, dict) and y is not None and not isinstance(y, dict):
        return dict.fromkeys(y_pred, y)
    return y
