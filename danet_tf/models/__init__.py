"""The backend-agnostic model core: `keras.ops` and `keras.layers` only.

Nothing here imports TensorFlow (the chunked attention uses `tf.map_fn` only
when Keras itself runs on TensorFlow); it runs on the TensorFlow, JAX and
PyTorch backends.
"""

from danet_tf.models.attention import ChannelAttention, PositionAttention
from danet_tf.models.batch_norm_folding import fold_batch_norm
from danet_tf.models.danet import DANet
from danet_tf.models.dilated_resnet import BACKBONES, DEPTHS, DilatedResNet
from danet_tf.models.head import DANetHead
from danet_tf.models.preprocessing import normalize
from danet_tf.models.presets import preset_metadata
from danet_tf.models.resize import ResizeLike, resize_bilinear

__all__ = [
    "BACKBONES",
    "DEPTHS",
    "ChannelAttention",
    "DANet",
    "DANetHead",
    "DilatedResNet",
    "PositionAttention",
    "ResizeLike",
    "fold_batch_norm",
    "normalize",
    "preset_metadata",
    "resize_bilinear",
]
