"""DANet's Position Attention Module (PAM) and Channel Attention Module (CAM).

Both follow the official code (junfu1115/DANet, commit fc0e063) exactly, in
channels-last layout: no `1/sqrt(d)` scaling in the PAM, the CAM's
`rowmax(energy) - energy` trick, and a scalar `gamma` initialised to zero so
each module starts as the identity. The energies and softmaxes run in
float32 even under a mixed-precision policy.

Paper: https://arxiv.org/abs/1809.02983
"""

import keras
from keras import ops


def _flatten_positions(x):
    """`(B, H, W, C)` -> `(B, H*W, C)`."""
    shape = ops.shape(x)
    return ops.reshape(x, (shape[0], shape[1] * shape[2], shape[3]))


def _add_gamma(layer):
    return layer.add_weight(
        name="gamma", shape=(1,), initializer="zeros", trainable=True
    )


@keras.saving.register_keras_serializable(package="danet_tf")
class PositionAttention(keras.layers.Layer):
    """Position attention: every pixel attends to every pixel.

    With `X` the input flattened to `(B, N, C)`, `N = H * W`:
    `Q = X Wq + bq`, `K = X Wk + bk` (`C -> C // reduction`),
    `V = X Wv + bv` (`C -> C`), `A = softmax(Q K^T)` over the keys and
    `Y = gamma * (A V) + X`.

    Args:
        reduction: int. Channel reduction of the query/key projections.
            Defaults to `8` (the official `in_dim // 8`).

    Call arguments:
        inputs: `(batch, height, width, channels)`.

    Returns:
        `(batch, height, width, channels)`.

    Example:
    >>> layer = PositionAttention()
    >>> layer(np.zeros((1, 5, 7, 64), "float32")).shape
    (1, 5, 7, 64)
    """

    def __init__(self, reduction=8, **kwargs):
        super().__init__(**kwargs)
        if int(reduction) < 1:
            raise ValueError(f"`reduction` must be >= 1. Received: reduction={reduction}")
        self.reduction = int(reduction)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels < self.reduction:
            raise ValueError(
                "PositionAttention needs a known channel count >= reduction. "
                f"Received: input_shape={input_shape}"
            )

        def conv(filters, name):
            return keras.layers.Conv2D(
                filters, 1, use_bias=True, dtype=self.dtype_policy, name=name
            )

        self.query_conv = conv(channels // self.reduction, "query_conv")
        self.key_conv = conv(channels // self.reduction, "key_conv")
        self.value_conv = conv(channels, "value_conv")
        for sublayer in (self.query_conv, self.key_conv, self.value_conv):
            sublayer.build(input_shape)
        self.gamma = _add_gamma(self)
        super().build(input_shape)

    def attention(self, inputs):
        """The attention matrix `(B, N, N)` in float32 (row i: query pixel i)."""
        q = ops.cast(_flatten_positions(self.query_conv(inputs)), "float32")
        k = ops.cast(_flatten_positions(self.key_conv(inputs)), "float32")
        energy = ops.matmul(q, ops.transpose(k, (0, 2, 1)))
        return ops.softmax(energy, axis=-1)

    def call(self, inputs):
        v = ops.cast(_flatten_positions(self.value_conv(inputs)), "float32")
        out = ops.matmul(self.attention(inputs), v)
        out = ops.reshape(ops.cast(out, self.compute_dtype), ops.shape(inputs))
        return ops.cast(self.gamma, self.compute_dtype) * out + inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction}


@keras.saving.register_keras_serializable(package="danet_tf")
class ChannelAttention(keras.layers.Layer):
    """Channel attention: a `(C, C)` affinity between feature maps.

    With `X` flattened to `(B, N, C)`: `E = X^T X` `(B, C, C)`,
    `A = softmax(rowmax(E) - E)` over the last axis, `Y = gamma * (X A^T) + X`.
    There are no projections; `gamma` is the only weight.

    Call arguments:
        inputs: `(batch, height, width, channels)`.

    Returns:
        `(batch, height, width, channels)`.

    Example:
    >>> ChannelAttention()(np.zeros((2, 3, 4, 16), "float32")).shape
    (2, 3, 4, 16)
    """

    def build(self, input_shape):
        self.gamma = _add_gamma(self)
        super().build(input_shape)

    def attention(self, inputs):
        """The channel attention matrix `(B, C, C)` in float32."""
        x = ops.cast(_flatten_positions(inputs), "float32")
        energy = ops.matmul(ops.transpose(x, (0, 2, 1)), x)
        energy_new = ops.max(energy, axis=-1, keepdims=True) - energy
        return ops.softmax(energy_new, axis=-1)

    def call(self, inputs):
        x = ops.cast(_flatten_positions(inputs), "float32")
        out = ops.matmul(x, ops.transpose(self.attention(inputs), (0, 2, 1)))
        out = ops.reshape(ops.cast(out, self.compute_dtype), ops.shape(inputs))
        return ops.cast(self.gamma, self.compute_dtype) * out + inputs

    def compute_output_shape(self, input_shape):
        return input_shape
