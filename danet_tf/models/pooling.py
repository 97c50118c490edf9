"""Adaptive average pooling with PyTorch's bins, for any input size."""

import keras
from keras import ops


def _bin_weights(size, bins):
    """`(bins, size)` averaging weights: row `i` is `1 / n` over PyTorch's bin
    `[floor(i size / bins), ceil((i + 1) size / bins))` of `n` positions."""
    i = ops.arange(bins, dtype="int32")[:, None]
    start = (i * size) // bins
    end = ((i + 1) * size + bins - 1) // bins
    position = ops.arange(size, dtype="int32")[None, :]
    inside = ops.cast((position >= start) & (position < end), "float32")
    return inside / ops.cast(end - start, "float32")


@keras.saving.register_keras_serializable(package="danet_tf")
class AdaptiveAveragePooling(keras.layers.Layer):
    """PyTorch's `adaptive_avg_pool2d(x, bins)` on `(batch, h, w, channels)`.

    `keras.layers.AdaptiveAveragePooling2D` computes the same bins but fails
    when `bins` exceeds the input size (PSPNet's 6 bins on a 4x4 feature
    map; PyTorch lets bins overlap there); this layer is two small matrix
    products with the bins' averaging weights, valid for every size and
    backend.

    Args:
        bins: int. Output height and width.

    Returns:
        `(batch, bins, bins, channels)`.
    """

    def __init__(self, bins, **kwargs):
        super().__init__(**kwargs)
        self.bins = int(bins)

    def call(self, inputs):
        height, width = ops.shape(inputs)[1], ops.shape(inputs)[2]
        rows = ops.cast(_bin_weights(height, self.bins), inputs.dtype)
        cols = ops.cast(_bin_weights(width, self.bins), inputs.dtype)
        pooled = ops.einsum("ih,bhwc->biwc", rows, inputs)
        return ops.einsum("jw,biwc->bijc", cols, pooled)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.bins, self.bins, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "bins": self.bins}
