"""The official `DANetHead` and the optional FCN auxiliary head.

Both are functional graphs (like the backbone), so graph transforms such as
`fold_batch_norm` see every conv and BatchNorm.
"""

import keras

from danet_tf.models.attention import ChannelAttention, PositionAttention
from danet_tf.models.dilated_resnet import batch_normalization


def conv_bn_relu(filters, name, synchronized=False):
    """3x3 conv (no bias, PyTorch padding 1) + BN + ReLU as a Sequential."""
    return keras.Sequential(
        [
            keras.layers.ZeroPadding2D(1),
            keras.layers.Conv2D(filters, 3, use_bias=False, name="conv"),
            batch_normalization("bn", synchronized),
            keras.layers.ReLU(),
        ],
        name=name,
    )


def classifier(num_classes, dropout, name):
    """SpatialDropout2D (PyTorch Dropout2d) + 1x1 conv with bias."""
    return keras.Sequential(
        [
            keras.layers.SpatialDropout2D(dropout),
            keras.layers.Conv2D(num_classes, 1, use_bias=True, name="conv"),
        ],
        name=name,
    )


def DANetHead(
    in_channels,
    num_classes,
    inter_channels=None,
    dropout=0.1,
    synchronized_bn=False,
    attention_block_size=None,
    name="head",
):
    """Dual attention head (official `DANetHead`) as a functional model.

    `conv5a -> PAM (sa) -> conv51`, `conv5c -> CAM (sc) -> conv52`; the sum
    of both branches and each branch alone go through their own dropout +
    1x1 classifier (`conv8`, `conv6`, `conv7`). Sublayers keep the official
    names, so `head.get_layer("sa")` is the position attention.

    Args:
        in_channels: int. Channels of the layer4 features (2048 for
            ResNet-50/101/152, 512 for ResNet-18/34).
        num_classes: int. Number of output classes.
        inter_channels: int. Width of both branches. `None` means
            `in_channels // 4` (512 for ResNet's 2048).
        dropout: float. Channel dropout before each classifier. Defaults to
            `0.1`.
        synchronized_bn: bool. Cross-replica BN statistics.
        attention_block_size: `None`, `"auto"` or int. Query rows per block
            of the position attention (see `PositionAttention`).
        name: str. Model name.

    Returns:
        A `keras.Model` mapping layer4 features `(batch, h, w, in_channels)`
        to a list of three `(batch, h, w, num_classes)` logits: fused,
        position branch, channel branch (the official `sasc, sa, sc`).
    """
    inter = inter_channels or in_channels // 4
    features = keras.Input((None, None, in_channels), name="features")
    # Variable paths start with `name/` (e.g. `head/sa/gamma`): the
    # optimiser's 10x head learning rate selects them by that prefix.
    with keras.name_scope(name):
        pam = PositionAttention(block_size=attention_block_size, name="sa")
        cam = ChannelAttention(name="sc")
        sa_feat = conv_bn_relu(inter, "conv5a", synchronized_bn)(features)
        sa_feat = conv_bn_relu(inter, "conv51", synchronized_bn)(pam(sa_feat))
        sc_feat = conv_bn_relu(inter, "conv5c", synchronized_bn)(features)
        sc_feat = conv_bn_relu(inter, "conv52", synchronized_bn)(cam(sc_feat))
        fused = keras.layers.Add(name="sum")([sa_feat, sc_feat])
        outputs = [classifier(num_classes, dropout, "conv8")(fused),
                   classifier(num_classes, dropout, "conv6")(sa_feat),
                   classifier(num_classes, dropout, "conv7")(sc_feat)]
    return keras.Model(features, outputs, name=name)


def fcn_aux_head(features, num_classes, synchronized_bn=False, channels=256, dropout=0.1):
    """mmseg's FCN auxiliary head on layer3: 3x3 conv-BN-ReLU, dropout, 1x1.

    Args:
        features: layer3 features `(batch, h, w, 1024)`.

    Returns:
        `(batch, h, w, num_classes)` logits.
    """
    x = conv_bn_relu(channels, "aux_conv", synchronized_bn)(features)
    return classifier(num_classes, dropout, "aux_cls")(x)
