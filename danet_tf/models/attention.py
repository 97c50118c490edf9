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


# "auto" keeps the fastest (unchunked) path up to this many positions: N x N
# float32 is 64 MiB at N = 4096.
AUTO_UNCHUNKED_MAX_POSITIONS = 4096
# "auto" block size: about this many attention entries per block (16 MiB).
AUTO_BLOCK_ELEMENTS = 2**22


def auto_block_size(num_positions):
    """Query rows per block for `block_size="auto"`; `None` = unchunked."""
    if num_positions <= AUTO_UNCHUNKED_MAX_POSITIONS:
        return None
    return max(64, (AUTO_BLOCK_ELEMENTS // num_positions) // 64 * 64)


def _map_blocks(fn, blocks):
    """`fn` on each `blocks[i]` in turn (one block alive at a time), stacked."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.map_fn(fn, blocks, parallel_iterations=1,
                         fn_output_signature=tf.TensorSpec(None, "float32"))
    return ops.map(fn, blocks)


def _sum_over_blocks(fn, num_blocks, init):
    """`sum_i fn(i)` of a tuple of tensors, one block at a time."""
    def body(i, totals):
        return tuple(t + d for t, d in zip(totals, fn(i)))

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        _, totals = tf.while_loop(lambda i, _: i < num_blocks,
                                  lambda i, totals: (i + 1, body(i, totals)),
                                  (0, init), parallel_iterations=1)
        return totals
    return ops.fori_loop(0, num_blocks, body, init)


def _split_rows(x, block):
    """`(B, N, D)` -> `(num_blocks, B, block, D)`, zero-padding N up."""
    shape = ops.shape(x)
    num_blocks = (shape[1] + block - 1) // block
    x = ops.pad(x, [[0, 0], [0, num_blocks * block - shape[1]], [0, 0]])
    x = ops.reshape(x, (shape[0], num_blocks, block, shape[2]))
    return ops.transpose(x, (1, 0, 2, 3))


def _merge_rows(blocks, num_rows):
    """Inverse of `_split_rows`: `(num_blocks, B, block, D)` -> `(B, num_rows, D)`."""
    shape = ops.shape(blocks)
    x = ops.reshape(ops.transpose(blocks, (1, 0, 2, 3)), (shape[1], shape[0] * shape[2], shape[3]))
    return x[:, :num_rows]


def attention_probabilities(q, k):
    """`softmax(q k^T)` over the keys: `(B, M, d), (B, N, d) -> (B, M, N)`."""
    return ops.softmax(ops.matmul(q, ops.transpose(k, (0, 2, 1))), axis=-1)


def chunked_attention(q, k, v, block):
    """Exact `softmax(q k^T) v` computed `block` query rows at a time.

    Every block sees all keys, so each softmax row is complete: the result
    equals the unchunked product, while only a `(B, block, N)` slice of the
    attention exists at any time. The gradient recomputes each block's
    attention (FlashAttention-style backward) instead of storing `N x N`:
    with `P = softmax(S)`, `dS = P * (dO V^T - rowsum(dO * O))`,
    `dQ = dS K`, `dK = dS^T Q`, `dV = P^T dO`.

    Args:
        q, k: `(B, N, d)` float32. v: `(B, N, C)` float32.
        block: int. Query rows per block.

    Returns:
        `(B, N, C)` float32.
    """

    @ops.custom_gradient
    def attend(q, k, v):
        out = _merge_rows(
            _map_blocks(lambda qb: ops.matmul(attention_probabilities(qb, k), v),
                        _split_rows(q, block)),
            ops.shape(q)[1],
        )

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            return _chunked_attention_grads(q, k, v, out, ops.cast(upstream, "float32"), block)

        return out, grad

    return attend(q, k, v)


def _chunked_attention_grads(q, k, v, out, d_out, block):
    """`(dQ, dK, dV)` of `chunked_attention`, each block's attention
    recomputed: `dS = P * (dO V^T - rowsum(dO * O))`, `dQ = dS K`,
    `dK = dS^T Q`, `dV = P^T dO`."""
    v_t = ops.transpose(v, (0, 2, 1))
    q_blocks = _split_rows(q, block)
    d_blocks = _split_rows(d_out, block)
    dot_blocks = _split_rows(ops.sum(d_out * out, axis=-1, keepdims=True), block)

    def score_grads(q_block, d_block, dot_block):
        p = attention_probabilities(q_block, k)  # (B, block, N)
        return p, p * (ops.matmul(d_block, v_t) - dot_block)

    d_q = _merge_rows(
        _map_blocks(lambda b: ops.matmul(score_grads(*b)[1], k),
                    (q_blocks, d_blocks, dot_blocks)),
        ops.shape(q)[1],
    )

    def key_value_grads(i):
        q_block, d_block = q_blocks[i], d_blocks[i]
        p, d_scores = score_grads(q_block, d_block, dot_blocks[i])
        return (ops.matmul(ops.transpose(d_scores, (0, 2, 1)), q_block),
                ops.matmul(ops.transpose(p, (0, 2, 1)), d_block))

    d_k, d_v = _sum_over_blocks(key_value_grads, ops.shape(q_blocks)[0],
                                (ops.zeros_like(k), ops.zeros_like(v)))
    return d_q, d_k, d_v


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
        block_size: `None`, `"auto"` or int. `None` materialises the whole
            `(N, N)` attention (fastest for small inputs); an int computes it
            that many query rows at a time (exact, memory `block * N`, see
            `chunked_attention`); `"auto"` stays unchunked up to
            N = 4096 and picks blocks of about 2**22 entries above.

    Call arguments:
        inputs: `(batch, height, width, channels)`.

    Returns:
        `(batch, height, width, channels)`.

    Example:
    >>> layer = PositionAttention()
    >>> layer(np.zeros((1, 5, 7, 64), "float32")).shape
    (1, 5, 7, 64)
    """

    def __init__(self, reduction=8, block_size=None, **kwargs):
        super().__init__(**kwargs)
        if int(reduction) < 1:
            raise ValueError(f"`reduction` must be >= 1. Received: reduction={reduction}")
        if not (block_size is None or block_size == "auto"
                or (isinstance(block_size, int) and block_size > 0)):
            raise ValueError(
                "`block_size` must be None, 'auto' or a positive int. "
                f"Received: block_size={block_size!r}"
            )
        self.reduction = int(reduction)
        self.block_size = block_size

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

    def _project(self, conv, inputs):
        """1x1 projection flattened to `(B, N, channels)` float32."""
        return ops.cast(_flatten_positions(conv(inputs)), "float32")

    def attention(self, inputs):
        """The attention matrix `(B, N, N)` in float32 (row i: query pixel i)."""
        return attention_probabilities(self._project(self.query_conv, inputs),
                                       self._project(self.key_conv, inputs))

    def call(self, inputs):
        q = self._project(self.query_conv, inputs)
        k = self._project(self.key_conv, inputs)
        v = self._project(self.value_conv, inputs)

        def unchunked():
            return ops.matmul(attention_probabilities(q, k), v)

        num_positions = q.shape[1]
        if self.block_size is None:
            out = unchunked()
        elif self.block_size != "auto":
            out = chunked_attention(q, k, v, self.block_size)
        elif num_positions is not None:
            block = auto_block_size(num_positions)
            out = unchunked() if block is None else chunked_attention(q, k, v, block)
        else:
            n = ops.shape(q)[1]
            block = ops.maximum(64, (AUTO_BLOCK_ELEMENTS // n) // 64 * 64)
            out = ops.cond(n <= AUTO_UNCHUNKED_MAX_POSITIONS, unchunked,
                           lambda: chunked_attention(q, k, v, block))
        out = ops.reshape(ops.cast(out, self.compute_dtype), ops.shape(inputs))
        return ops.cast(self.gamma, self.compute_dtype) * out + inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction,
                "block_size": self.block_size}


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
        return self._attention(ops.cast(_flatten_positions(inputs), "float32"))

    def _attention(self, x):
        energy = ops.matmul(ops.transpose(x, (0, 2, 1)), x)
        energy_new = ops.max(energy, axis=-1, keepdims=True) - energy
        return ops.softmax(energy_new, axis=-1)

    def call(self, inputs):
        x = ops.cast(_flatten_positions(inputs), "float32")
        out = ops.matmul(x, ops.transpose(self._attention(x), (0, 2, 1)))
        out = ops.reshape(ops.cast(out, self.compute_dtype), ops.shape(inputs))
        return ops.cast(self.gamma, self.compute_dtype) * out + inputs

    def compute_output_shape(self, input_shape):
        return input_shape
