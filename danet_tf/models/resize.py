"""Bilinear resizing that matches PyTorch's `F.interpolate(..., mode="bilinear")`.

`keras.ops.image.resize` only offers half-pixel centres (PyTorch's
`align_corners=False`). The official DANet upsamples its logits with
`align_corners=True`, where output pixel `i` samples input coordinate
`i * (in - 1) / (out - 1)`. Converted official weights only reproduce the
published numbers with that formula, so it is written out here with
`keras.ops.take` (GATHER in TFLite) and two linear blends.
"""

import keras
from keras import ops


def _source_coords(in_size, out_size, align_corners):
    """Float32 source coordinate of each output index, PyTorch's formula."""
    in_f = ops.cast(in_size, "float32")
    out_f = ops.cast(out_size, "float32")
    i = ops.cast(ops.arange(out_size), "float32")
    if align_corners:
        scale = ops.where(out_f > 1.0, (in_f - 1.0) / ops.maximum(out_f - 1.0, 1.0), 0.0)
        return i * scale
    # Half-pixel centres, clamped at 0 as PyTorch does.
    return ops.maximum((i + 0.5) * (in_f / out_f) - 0.5, 0.0)


def _interpolate_axis(x, out_size, axis, align_corners):
    in_size = ops.shape(x)[axis]
    src = _source_coords(in_size, out_size, align_corners)
    lo = ops.floor(src)
    frac = src - lo
    lo = ops.cast(lo, "int32")
    lo = ops.minimum(lo, in_size - 1)
    hi = ops.minimum(lo + 1, in_size - 1)
    shape = [1, 1, 1, 1]
    shape[axis] = -1
    frac = ops.cast(ops.reshape(frac, shape), x.dtype)
    x_lo = ops.take(x, lo, axis=axis)
    x_hi = ops.take(x, hi, axis=axis)
    return x_lo + (x_hi - x_lo) * frac


def resize_bilinear(x, size, align_corners=True):
    """Resize `(B, H, W, C)` to `(B, size[0], size[1], C)` bilinearly.

    Args:
        x: tensor `(batch, height, width, channels)`.
        size: `(out_height, out_width)`, Python ints or scalar tensors.
        align_corners: bool. PyTorch's `align_corners` semantics.
    """
    x = _interpolate_axis(x, size[0], 1, align_corners)
    return _interpolate_axis(x, size[1], 2, align_corners)


@keras.saving.register_keras_serializable(package="danet_tf")
class ResizeLike(keras.layers.Layer):
    """Bilinearly resizes its first input to the spatial size of the second.

    Args:
        align_corners: bool. PyTorch's `align_corners`. Defaults to `True`
            (the official DANet).

    Call arguments:
        inputs: list `[x, reference]`; `x` is `(batch, h, w, channels)`,
            `reference` is `(batch, H, W, any)`.

    Returns:
        `(batch, H, W, channels)`, in `x`'s dtype.
    """

    def __init__(self, align_corners=True, **kwargs):
        super().__init__(**kwargs)
        self.align_corners = bool(align_corners)

    def call(self, inputs):
        x, reference = inputs
        size = ops.shape(reference)[1:3]
        return resize_bilinear(x, size, self.align_corners)

    def compute_output_shape(self, input_shape):
        x_shape, ref_shape = input_shape
        return (x_shape[0], ref_shape[1], ref_shape[2], x_shape[3])

    def get_config(self):
        return {**super().get_config(), "align_corners": self.align_corners}
