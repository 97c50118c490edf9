"""danet_tf: DANet (Dual Attention Network) for Keras 3.

The package root exposes the backend-agnostic model core
(`danet_tf.models`: `DANet` with its `compile()` recipe (losses, metrics,
optimizer) and presets, `PositionAttention`, `ChannelAttention`,
`DANetHead`, `DilatedResNet`, `ResizeLike`, `fold_batch_norm`, `normalize`,
`preset_metadata`, ...); importing it does not import TensorFlow. The
TensorFlow-side parts live in `danet_tf.data` (tf.data), `danet_tf.train`
(the task seams, the `fit` trainer, run directories) and `danet_tf.deploy`
(export, inference, evaluation, pictures).
"""

from danet_tf.models import *  # noqa: F403  (the public API is the model core's)
from danet_tf.models import __all__  # noqa: F401

__version__ = "0.3.0"
