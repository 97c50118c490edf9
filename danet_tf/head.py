"""The official `DANetHead` and the optional FCN auxiliary head."""

import keras

from danet_tf.attention import ChannelAttention, PositionAttention
from danet_tf.backbone import BN_EPSILON, BN_MOMENTUM


def _conv_bn_relu(filters, name, synchronized, folded=False):
    """3x3 conv (no bias, PyTorch padding 1) + BN + ReLU as a Sequential;
    `folded=True`: conv with bias, no BN (see `fold_batch_norm`)."""
    norm = [] if folded else [
        keras.layers.BatchNormalization(
            epsilon=BN_EPSILON, momentum=BN_MOMENTUM, synchronized=synchronized, name="bn",
        )
    ]
    return keras.Sequential(
        [
            keras.layers.ZeroPadding2D(1),
            keras.layers.Conv2D(filters, 3, use_bias=folded, name="conv"),
            *norm,
            keras.layers.ReLU(),
        ],
        name=name,
    )


def _classifier(num_classes, dropout, name):
    """SpatialDropout2D (PyTorch Dropout2d) + 1x1 conv with bias."""
    return keras.Sequential(
        [
            keras.layers.SpatialDropout2D(dropout),
            keras.layers.Conv2D(num_classes, 1, use_bias=True, name="conv"),
        ],
        name=name,
    )


@keras.saving.register_keras_serializable(package="danet_tf")
class DANetHead(keras.layers.Layer):
    """Dual attention head (official `DANetHead`).

    `conv5a -> PAM -> conv51`, `conv5c -> CAM -> conv52`; the sum of both
    branches and each branch alone go through their own dropout + 1x1
    classifier (`conv8`, `conv6`, `conv7`).

    Args:
        num_classes: int. Number of output classes.
        inter_channels: int. Width of both branches. `None` means
            `in_channels // 4` (512 for ResNet's 2048).
        dropout: float. Channel dropout before each classifier. Defaults to
            `0.1`.
        attention_block_size: `None`, `"auto"` or int. Query rows per block
            of the position attention (see `PositionAttention`).
        synchronized_bn: bool. Cross-replica BN statistics.
        folded_batch_norm: bool. Convs with biases and no BN layers (the
            inference graph that `fold_batch_norm` fills).

    Call arguments:
        inputs: layer4 features `(batch, h, w, in_channels)`.
        training: bool. Dropout and BN mode.

    Returns:
        A tuple of three `(batch, h, w, num_classes)` logits: fused,
        position branch, channel branch (the official `sasc, sa, sc`).
    """

    def __init__(
        self,
        num_classes,
        inter_channels=None,
        dropout=0.1,
        synchronized_bn=False,
        attention_block_size=None,
        folded_batch_norm=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.inter_channels = inter_channels
        self.dropout = float(dropout)
        self.synchronized_bn = bool(synchronized_bn)
        self.attention_block_size = attention_block_size
        self.folded_batch_norm = bool(folded_batch_norm)

    def build(self, input_shape):
        inter = self.inter_channels or input_shape[-1] // 4
        norm = (self.synchronized_bn, self.folded_batch_norm)
        self.conv5a = _conv_bn_relu(inter, "conv5a", *norm)
        self.conv5c = _conv_bn_relu(inter, "conv5c", *norm)
        self.sa = PositionAttention(block_size=self.attention_block_size, name="sa")
        self.sc = ChannelAttention(name="sc")
        self.conv51 = _conv_bn_relu(inter, "conv51", *norm)
        self.conv52 = _conv_bn_relu(inter, "conv52", *norm)
        self.conv6 = _classifier(self.num_classes, self.dropout, "conv6")
        self.conv7 = _classifier(self.num_classes, self.dropout, "conv7")
        self.conv8 = _classifier(self.num_classes, self.dropout, "conv8")
        branch_shape = (*input_shape[:-1], inter)
        for layer in (self.conv5a, self.conv5c):
            layer.build(input_shape)
        for layer in (self.sa, self.sc, self.conv51, self.conv52, self.conv6, self.conv7, self.conv8):
            layer.build(branch_shape)
        super().build(input_shape)

    def call(self, inputs, training=None):
        sa_feat = self.conv51(self.sa(self.conv5a(inputs, training=training)), training=training)
        sc_feat = self.conv52(self.sc(self.conv5c(inputs, training=training)), training=training)
        fused = self.conv8(sa_feat + sc_feat, training=training)
        return (
            fused,
            self.conv6(sa_feat, training=training),
            self.conv7(sc_feat, training=training),
        )

    def compute_output_shape(self, input_shape):
        shape = (*input_shape[:-1], self.num_classes)
        return (shape, shape, shape)

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "inter_channels": self.inter_channels,
            "dropout": self.dropout,
            "synchronized_bn": self.synchronized_bn,
            "attention_block_size": self.attention_block_size,
            "folded_batch_norm": self.folded_batch_norm,
        }


def fcn_aux_head(features, num_classes, synchronized_bn=False, channels=256, dropout=0.1,
                 folded_batch_norm=False):
    """mmseg's FCN auxiliary head on layer3: 3x3 conv-BN-ReLU, dropout, 1x1.

    Args:
        features: layer3 features `(batch, h, w, 1024)`.

    Returns:
        `(batch, h, w, num_classes)` logits.
    """
    x = _conv_bn_relu(channels, "aux_conv", synchronized_bn, folded_batch_norm)(features)
    return _classifier(num_classes, dropout, "aux_cls")(x)
