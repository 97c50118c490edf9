"""danet_tf: DANet (Dual Attention Network) for TensorFlow / Keras 3."""

from danet_tf.attention import ChannelAttention, PositionAttention
from danet_tf.backbone import DilatedResNet
from danet_tf.batch_norm_folding import fold_batch_norm
from danet_tf.head import DANetHead
from danet_tf.model import DANet
from danet_tf.resize import ResizeLike, resize_bilinear

__version__ = "0.1.0"

__all__ = [
    "ChannelAttention",
    "DANet",
    "DANetHead",
    "DilatedResNet",
    "PositionAttention",
    "ResizeLike",
    "fold_batch_norm",
    "resize_bilinear",
]
