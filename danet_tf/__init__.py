"""danet_tf: DANet (Dual Attention Network) for Keras 3.

The package root exposes the backend-agnostic model core
(`danet_tf.models`); importing it does not import TensorFlow. The
TensorFlow-side parts live in `danet_tf.data` (tf.data), `danet_tf.train`
(losses, metrics, optimiser, the `fit` trainer) and `danet_tf.deploy`
(export, inference, evaluation, pictures).
"""

from danet_tf.models import (
    ChannelAttention,
    DANet,
    DANetHead,
    DilatedResNet,
    PositionAttention,
    ResizeLike,
    fold_batch_norm,
    normalize,
    resize_bilinear,
)

__version__ = "0.2.0"

__all__ = [
    "ChannelAttention",
    "DANet",
    "DANetHead",
    "DilatedResNet",
    "PositionAttention",
    "ResizeLike",
    "fold_batch_norm",
    "normalize",
    "resize_bilinear",
]
