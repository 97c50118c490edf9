"""ImageNet backbone weights: torchvision ResNets (`.pth`, by name) and
keras.applications ResNets (layer by layer, Caffe layout)."""

from danet_tf.models.dilated_resnet import BASIC_BLOCK_DEPTHS, DEPTHS
from danet_tf.models.weights import (
    WeightConversionError,
    assign_state,
    backbone_targets,
    load_torch_state_dict,
)


def load_torchvision_backbone(backbone, state):
    """Assigns torchvision ResNet ImageNet weights (`fc.*` ignored) to a `DilatedResNet`."""
    return assign_state(backbone_targets(backbone), state, ignore_prefixes=("fc.",),
                        source="torchvision ResNet checkpoint")


# keras.applications has the bottleneck ResNets only (50, 101, 152).
KERAS_APP_DEPTHS = tuple(d for d in DEPTHS if d not in BASIC_BLOCK_DEPTHS)


def keras_applications_pairs(depth):
    """`(keras.applications layer, DilatedResNet layer)` name pairs for the Caffe layout."""
    pairs = [("conv1_conv", "conv1"), ("conv1_bn", "bn1")]
    for stage, blocks in enumerate(DEPTHS[depth], start=1):
        for block in range(blocks):
            src = f"conv{stage + 1}_block{block + 1}"
            dst = f"layer{stage}_{block}"
            for i in (1, 2, 3):
                pairs += [(f"{src}_{i}_conv", f"{dst}_conv{i}"), (f"{src}_{i}_bn", f"{dst}_bn{i}")]
            if block == 0:
                pairs += [(f"{src}_0_conv", f"{dst}_downsample_0"),
                          (f"{src}_0_bn", f"{dst}_downsample_1")]
    return pairs


def load_keras_applications_backbone(backbone, application):
    """Copies a `keras.applications.ResNet{50,101,152}` into a Caffe-layout `DilatedResNet`.

    The backbone must be built with `layout="caffe"` (stride on the first
    1x1 conv, conv biases, BN epsilon 1.001e-5), as those networks are.
    """
    num_blocks = sum(1 for layer in application.layers if layer.name.endswith("_3_conv"))
    depth = next(d for d in KERAS_APP_DEPTHS if sum(DEPTHS[d]) == num_blocks)
    copied = []
    for src, dst in keras_applications_pairs(depth):
        source, target = application.get_layer(src), backbone.get_layer(dst)
        weights = source.get_weights()
        shapes = [tuple(w.shape) for w in target.weights]
        if [tuple(w.shape) for w in weights] != shapes:
            raise WeightConversionError(
                f"{src} -> {dst}: shapes {[w.shape for w in weights]} vs {shapes}"
            )
        target.set_weights(weights)
        copied.append(dst)
    return copied


def load_backbone_weights(backbone, spec, depth, layout):
    """Loads `spec` into a `DilatedResNet`; returns a one-line report.

    `spec`: `"none"`; `"imagenet"` (keras.applications, downloaded by Keras;
    caffe layout); a keras.applications `.h5` file (caffe layout); a
    torchvision ResNet `.pth` (torchvision layout); or a `.weights.h5` of a
    `DilatedResNet` (e.g. from `training/convert_weights.py torchvision`).
    """
    if spec in (None, "", "none"):
        return "backbone: random initialisation"
    if spec.endswith(".weights.h5"):
        backbone.load_weights(spec)
        return f"backbone: weights from {spec}"
    if spec == "imagenet" or spec.endswith(".h5"):
        if layout != "caffe":
            raise ValueError(
                f"backbone_weights={spec!r} are keras.applications weights, which need "
                "model.backbone_layout=caffe (stride on the first 1x1 conv). For the "
                "torchvision layout, pass a torchvision ResNet .pth file instead."
            )
        copied = load_keras_applications_backbone(backbone, keras_application(spec, depth))
        return f"backbone: keras.applications ResNet{depth} weights ({spec}), {len(copied)} layers"
    if layout != "torchvision":
        raise ValueError(
            f"{spec}: torchvision .pth weights need model.backbone_layout=torchvision."
        )
    names = load_torchvision_backbone(backbone, load_torch_state_dict(spec))
    return f"backbone: torchvision weights from {spec}, {len(names)} tensors"


def keras_application(spec, depth):
    """`keras.applications.ResNet{depth}` with weights `spec` (`"imagenet"`,
    downloaded by Keras, or an `.h5` file); a failed download is one line."""
    import keras

    try:
        return getattr(keras.applications, f"ResNet{depth}")(
            weights=spec, include_top=False, input_shape=(None, None, 3)
        )
    except Exception as error:  # Keras raises a bare Exception when a download fails
        if "URL fetch failure" not in str(error):
            raise
        raise ConnectionError(
            f"model.backbone_weights=imagenet: Keras could not download the ImageNet "
            f"ResNet{depth} weights ({error}). Connect once (Keras keeps them in "
            "~/.keras/models/), or set model.backbone_weights to a downloaded "
            "keras.applications .h5 file, or to none (random initialisation)."
        ) from error
