"""The context heads of the paper's comparison on the same dilated backbone
(dilated FCN, PSPNet's pyramid pooling, DeepLabV3's ASPP), mmseg's FCN
auxiliary head, and the conv-BN-ReLU and classifier blocks every head is made
of.

They follow the official code base's `encoding.models` (`FCNHead`, `PSPHead`,
`DeepLabV3Head`), which the DANet repository ships beside `DANetHead`; all are
functional graphs, so `fold_batch_norm` sees every conv and BatchNorm.
"""

import keras

from danet_tf.models.dilated_resnet import batch_normalization
from danet_tf.models.pooling import AdaptiveAveragePooling
from danet_tf.models.resize import ResizeLike

PSP_BINS = (1, 2, 3, 6)
ASPP_RATES = (12, 24, 36)  # DeepLabV3 at output stride 8


def conv_bn_relu(filters, name, synchronized=False, kernel_size=3, dilation=1):
    """Conv (no bias, PyTorch zero padding `dilation * (k - 1) / 2`) + BN + ReLU."""
    padding = dilation * (kernel_size - 1) // 2
    layers = [keras.layers.ZeroPadding2D(padding)] if padding else []
    return keras.Sequential(
        layers + [
            keras.layers.Conv2D(filters, kernel_size, dilation_rate=dilation, use_bias=False,
                                name="conv"),
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


def fcn_head(in_channels, num_classes, dropout=0.1, synchronized_bn=False, name="head"):
    """The dilated-FCN baseline (`encoding` `FCNHead`): 3x3 conv to
    `in_channels // 4`, BN, ReLU, dropout, 1x1 classifier.

    Returns:
        A `keras.Model`: `(batch, h, w, in_channels)` -> `[(batch, h, w, num_classes)]`.
    """
    features = keras.Input((None, None, in_channels), name="features")
    with keras.name_scope(name):
        x = conv_bn_relu(in_channels // 4, "conv5", synchronized_bn)(features)
        logits = classifier(num_classes, dropout, "cls")(x)
    return keras.Model(features, [logits], name=name)


def psp_head(in_channels, num_classes, dropout=0.1, synchronized_bn=False, align_corners=True,
             bins=PSP_BINS, name="head"):
    """PSPNet's pyramid pooling head (`encoding` `PSPHead`).

    For each bin count `b` in `bins`: adaptive average pooling to `b x b`
    (PyTorch's bin edges, any input size: `AdaptiveAveragePooling`), 1x1 conv
    to `in_channels // 4` + BN + ReLU, bilinear upsampling back; the four maps
    are concatenated with the features (`2 * in_channels`), then 3x3 conv to
    `in_channels // 4`, BN, ReLU, dropout, 1x1 classifier.

    Returns:
        A `keras.Model`: `(batch, h, w, in_channels)` -> `[(batch, h, w, num_classes)]`.
    """
    features = keras.Input((None, None, in_channels), name="features")
    with keras.name_scope(name):
        pyramid = [features]
        for b in bins:
            pooled = AdaptiveAveragePooling(b, name=f"pool{b}")(features)
            pooled = conv_bn_relu(in_channels // 4, f"pool{b}_conv", synchronized_bn,
                                  kernel_size=1)(pooled)
            pyramid.append(ResizeLike(align_corners, name=f"pool{b}_up")([pooled, features]))
        x = keras.layers.Concatenate(name="pyramid")(pyramid)
        x = conv_bn_relu(in_channels // 4, "conv5", synchronized_bn)(x)
        logits = classifier(num_classes, dropout, "cls")(x)
    return keras.Model(features, [logits], name=name)


def aspp_head(in_channels, num_classes, dropout=0.1, synchronized_bn=False, align_corners=True,
              rates=ASPP_RATES, name="head"):
    """DeepLabV3's ASPP head (`encoding` `DeepLabV3Head`).

    Five branches of `in_channels // 8`: 1x1 conv, three 3x3 convs with
    dilation `rates`, and image pooling (global average, 1x1 conv, upsampled),
    each + BN + ReLU; concatenated, projected by 1x1 conv + BN + ReLU +
    channel dropout 0.5; then 3x3 conv + BN + ReLU, dropout, 1x1 classifier.

    Returns:
        A `keras.Model`: `(batch, h, w, in_channels)` -> `[(batch, h, w, num_classes)]`.
    """
    inter = in_channels // 8
    features = keras.Input((None, None, in_channels), name="features")
    with keras.name_scope(name):
        branches = [conv_bn_relu(inter, "b0", synchronized_bn, kernel_size=1)(features)]
        for i, rate in enumerate(rates, start=1):
            branches.append(conv_bn_relu(inter, f"b{i}", synchronized_bn, dilation=rate)(features))
        pooled = keras.layers.GlobalAveragePooling2D(keepdims=True, name="b4_pool")(features)
        pooled = conv_bn_relu(inter, "b4", synchronized_bn, kernel_size=1)(pooled)
        branches.append(ResizeLike(align_corners, name="b4_up")([pooled, features]))
        x = keras.layers.Concatenate(name="aspp")(branches)
        x = conv_bn_relu(inter, "project", synchronized_bn, kernel_size=1)(x)
        x = keras.layers.SpatialDropout2D(0.5, name="project_dropout")(x)
        x = conv_bn_relu(inter, "block", synchronized_bn)(x)
        logits = classifier(num_classes, dropout, "cls")(x)
    return keras.Model(features, [logits], name=name)


def fcn_aux_head(features, num_classes, synchronized_bn=False, channels=256, dropout=0.1):
    """mmseg's FCN auxiliary head on layer3: 3x3 conv-BN-ReLU, dropout, 1x1.

    Args:
        features: layer3 features `(batch, h, w, 1024)`.

    Returns:
        `(batch, h, w, num_classes)` logits.
    """
    x = conv_bn_relu(channels, "aux_conv", synchronized_bn)(features)
    return classifier(num_classes, dropout, "aux_cls")(x)
