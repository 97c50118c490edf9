"""Dilated ResNet backbone in the torchvision layout.

Bottlenecks put the stride on the 3x3 conv ("ResNet v1.5"), every conv pads
explicitly as PyTorch does (so strided convs see the same pixels), and the
last stages trade stride for dilation to reach output stride 8 or 16, with the
official DANet dilation pattern: the first block of a dilated stage keeps the
previous dilation. Layer names follow the PyTorch state dict
(`layer3_0_conv2` for `layer3.0.conv2`) so weights convert by name.
"""

import keras

# The one table of ResNet depths: blocks per stage.
DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3),
          152: (3, 8, 36, 3)}
# Backbone names as `DANet(backbone=...)` and the configs spell them.
BACKBONES = {f"resnet{depth}": depth for depth in DEPTHS}
# ResNet-18/34 use two-conv basic blocks (expansion 1), the others bottlenecks (x4).
BASIC_BLOCK_DEPTHS = (18, 34)
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9
# "torchvision": stride on the 3x3 conv, no conv biases, BN epsilon 1e-5 (the
# official DANet). "caffe": keras.applications' layout (stride on the first
# 1x1 conv, conv biases, BN epsilon 1.001e-5), to load its ImageNet weights.
LAYOUTS = ("torchvision", "caffe")


def stage_strides_and_dilations(output_stride):
    """Per-stage `(stride, first_block_dilation, dilation)` for layer1..4.

    The first block of a dilated stage keeps the previous stage's dilation
    (the official code and torchvision's `replace_stride_with_dilation`).
    """
    if output_stride not in (8, 16, 32):
        raise ValueError(
            f"output_stride must be 8, 16 or 32. Received: output_stride={output_stride}"
        )
    return {
        8: [(1, 1, 1), (2, 1, 1), (1, 1, 2), (1, 2, 4)],
        16: [(1, 1, 1), (2, 1, 1), (2, 1, 1), (1, 1, 2)],
        32: [(1, 1, 1), (2, 1, 1), (2, 1, 1), (2, 1, 1)],
    }[output_stride]


def batch_normalization(name, synchronized=False, epsilon=BN_EPSILON):
    """PyTorch-equivalent BN (epsilon 1e-5, momentum 0.1 -> Keras 0.9).

    `synchronized` (cross-replica statistics) applies on TensorFlow; on JAX
    `keras.distribution.DataParallel` arrays are global, so the batch
    statistics already cover every device, and Keras refuses the flag there.
    """
    return keras.layers.BatchNormalization(
        epsilon=epsilon, momentum=BN_MOMENTUM,
        synchronized=synchronized and keras.backend.backend() == "tensorflow", name=name,
    )


def conv_bn(x, filters, kernel_size, name, bn_name, stride=1, dilation=1, synchronized=False,
            layout="torchvision"):
    """PyTorch-padded conv + BN. `padding = dilation * (k - 1) // 2`."""
    pad = dilation * (kernel_size - 1) // 2
    if pad:
        x = keras.layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
    caffe = layout == "caffe"
    x = keras.layers.Conv2D(
        filters, kernel_size, strides=stride, dilation_rate=dilation,
        use_bias=caffe, name=name,
    )(x)
    return batch_normalization(bn_name, synchronized, 1.001e-5 if caffe else BN_EPSILON)(x)


def bottleneck(x, planes, stride, dilation, downsample, name, **conv_options):
    """Bottleneck 1x1 -> 3x3 (dilation) -> 1x1 (x4); the stride sits on the 3x3
    conv (torchvision) or on the first 1x1 conv (caffe layout).

    `conv_options` (`synchronized`, `layout`) go to every `conv_bn`.
    """
    shortcut = x
    if downsample:
        shortcut = conv_bn(x, planes * 4, 1, f"{name}_downsample_0", f"{name}_downsample_1",
                           stride=stride, **conv_options)
    caffe = conv_options.get("layout") == "caffe"
    stride1, stride2 = (stride, 1) if caffe else (1, stride)
    y = conv_bn(x, planes, 1, f"{name}_conv1", f"{name}_bn1", stride=stride1, **conv_options)
    y = keras.layers.ReLU(name=f"{name}_relu1")(y)
    y = conv_bn(y, planes, 3, f"{name}_conv2", f"{name}_bn2", stride=stride2, dilation=dilation,
                **conv_options)
    y = keras.layers.ReLU(name=f"{name}_relu2")(y)
    y = conv_bn(y, planes * 4, 1, f"{name}_conv3", f"{name}_bn3", **conv_options)
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def basic_block(x, planes, stride, dilation, downsample, name, **conv_options):
    """torchvision BasicBlock: 3x3 (stride, dilation) -> 3x3 (dilation)."""
    shortcut = x
    if downsample:
        shortcut = conv_bn(x, planes, 1, f"{name}_downsample_0", f"{name}_downsample_1",
                           stride=stride, **conv_options)
    y = conv_bn(x, planes, 3, f"{name}_conv1", f"{name}_bn1", stride=stride, dilation=dilation,
                **conv_options)
    y = keras.layers.ReLU(name=f"{name}_relu1")(y)
    y = conv_bn(y, planes, 3, f"{name}_conv2", f"{name}_bn2", dilation=dilation, **conv_options)
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def stem(x, deep_stem, **conv_options):
    """7x7/2 conv (or three 3x3 convs, ResNetV1c) + BN + ReLU + 3x3/2 max-pool."""
    if deep_stem:
        for i, (filters, stride) in enumerate(((32, 2), (32, 1), (64, 1))):
            x = conv_bn(x, filters, 3, f"stem_conv{i}", f"stem_bn{i}", stride=stride,
                        **conv_options)
            x = keras.layers.ReLU(name=f"stem_relu{i}")(x)
    else:
        x = conv_bn(x, 64, 7, "conv1", "bn1", stride=2, **conv_options)
        x = keras.layers.ReLU(name="relu")(x)
    # Inputs to the pool are >= 0 after ReLU, so zero padding equals -inf padding.
    x = keras.layers.ZeroPadding2D(1, name="maxpool_pad")(x)
    return keras.layers.MaxPooling2D(3, strides=2, name="maxpool")(x)


def DilatedResNet(
    depth=101,
    output_stride=8,
    multi_grid=None,
    deep_stem=False,
    synchronized_bn=False,
    input_shape=(None, None, 3),
    layout="torchvision",
    name=None,
):
    """Builds a dilated ResNet returning the four stage features.

    Args:
        depth: int. 50, 101 or 152 (bottlenecks, DANet's backbones), or 18
            and 34 (basic blocks; light variants for CPU experiments).
        output_stride: int. 8, 16 or 32: input size / layer4 size.
        multi_grid: optional tuple of layer4 dilation multipliers (e.g.
            `(1, 2, 4)`); `None` uses the plain pattern.
        deep_stem: bool. Three 3x3 convs instead of the 7x7 stem.
        synchronized_bn: bool. Batch statistics across replicas.
        input_shape: tuple. `(height, width, 3)`; `None` for dynamic sizes.
        layout: `"torchvision"` (the official DANet) or `"caffe"`
            (keras.applications' ResNet, to load its ImageNet weights).
        name: str. Model name; defaults to `resnet{depth}`.

    Returns:
        A functional `keras.Model` mapping images `(B, H, W, 3)` to a dict
        `{"layer1": (B, H/4, W/4, 256), "layer2": (B, H/8, W/8, 512),
        "layer3": (B, H/s3, W/s3, 1024), "layer4": (B, H/os, W/os, 2048)}`
        (ceil-divided as PyTorch's convs do; ResNet-18/34 have 4x fewer
        channels: 64, 128, 256, 512).
    """
    if depth not in DEPTHS:
        raise ValueError(f"depth must be one of {sorted(DEPTHS)}. Received: depth={depth}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}. Received: layout={layout!r}")
    if layout == "caffe" and (depth in BASIC_BLOCK_DEPTHS or deep_stem):
        raise ValueError("The caffe layout exists for ResNet-50/101/152 with the 7x7 stem only.")
    plan = stage_strides_and_dilations(output_stride)
    images = keras.Input(input_shape, name="images")
    conv_options = {"synchronized": synchronized_bn, "layout": layout}
    x = stem(images, deep_stem, **conv_options)
    features = {}
    expansion = 1 if depth in BASIC_BLOCK_DEPTHS else 4
    build_block = bottleneck if expansion == 4 else basic_block
    in_channels = 64
    for stage, (blocks, planes, (stride, first_dilation, dilation)) in enumerate(
        zip(DEPTHS[depth], (64, 128, 256, 512), plan), start=1
    ):
        dilations = [first_dilation] + [dilation] * (blocks - 1)
        if stage == 4 and multi_grid:
            dilations = [dilation * multi_grid[i % len(multi_grid)] for i in range(blocks)]
        for block_index, block_dilation in enumerate(dilations):
            block_stride = stride if block_index == 0 else 1
            downsample = (block_index == 0
                          and (block_stride != 1 or in_channels != planes * expansion))
            x = build_block(x, planes, block_stride, block_dilation, downsample,
                            f"layer{stage}_{block_index}", **conv_options)
            in_channels = planes * expansion
        features[f"layer{stage}"] = x
    return keras.Model(images, features, name=name or f"resnet{depth}")


def layer4_grid(multi_grid):
    """Layer4's dilation multipliers from `DANet`'s `multi_grid`: `True` is
    the released DANet-101's `(1, 2, 4)`, a sequence gives them, `False`
    none."""
    if multi_grid is True:
        return (1, 2, 4)
    return tuple(multi_grid) if multi_grid else None
