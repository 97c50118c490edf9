"""Pretrained weights: official DANet checkpoints, torchvision and keras.applications ResNets.

Conversions are by name. The official state dict (junfu1115/DANet) names the
backbone `pretrained.*` and the head `head.*`; torchvision ResNets use the same
backbone names without the prefix. Keras layer names mirror them
(`layer3.0.conv2` -> `layer3_0_conv2`). Conv kernels go from PyTorch's
`(out, in, kh, kw)` to Keras' `(kh, kw, in, out)`; BatchNorm's `weight`,
`bias`, `running_mean`, `running_var` become `gamma`, `beta`, `moving_mean`,
`moving_variance`. Any missing, unexpected or mis-shaped tensor stops the
conversion with the full list.

Reading `.pth` files needs PyTorch (`pip install torch`); it is imported
only by `load_torch_state_dict`, never by the rest of the library.
"""

import numpy as np

from danet_tf.models.dilated_resnet import BASIC_BLOCK_DEPTHS, DEPTHS
from danet_tf.models.head import require_danet_head

BN_SUFFIXES = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean",
               "running_var": "moving_variance"}
IGNORED_SUFFIXES = ("num_batches_tracked",)


class WeightConversionError(ValueError):
    """The checkpoint does not match the model; the message lists every problem."""


def load_torch_state_dict(path):
    """`{name: float32 ndarray}` from a `.pth`/`.pth.tar` (plain, `{"state_dict"}`,
    `{"model"}`, with or without a `module.` prefix)."""
    try:
        import torch
    except ImportError as err:
        raise ImportError(
            "Reading PyTorch checkpoints needs PyTorch: pip install torch (CPU build is enough)."
        ) from err
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(checkpoint, dict):
        for key in ("state_dict", "model", "model_state"):
            if key in checkpoint and isinstance(checkpoint[key], dict):
                checkpoint = checkpoint[key]
                break
    if not isinstance(checkpoint, dict):
        raise WeightConversionError(
            f"{path}: expected a state dict, found {type(checkpoint).__name__}."
        )
    state = {}
    for name, tensor in checkpoint.items():
        name = name.removeprefix("module.")
        if hasattr(tensor, "detach"):
            state[name] = tensor.detach().cpu().numpy()
    return state


def _conv_kernel(tensor):
    return np.transpose(tensor, (2, 3, 1, 0))


def _layer_targets(layer, prefix, kind):
    """`{torch name: (keras variable, transform)}` for one conv or BN layer."""
    if kind == "conv":
        targets = {f"{prefix}.weight": (layer.kernel, _conv_kernel)}
        if layer.use_bias:
            targets[f"{prefix}.bias"] = (layer.bias, None)
        return targets
    return {f"{prefix}.{t}": (getattr(layer, k), None) for t, k in BN_SUFFIXES.items()}


def backbone_targets(backbone, prefix=""):
    """Torch names of a `DilatedResNet`'s convs and BNs, e.g. `layer1.0.conv1.weight`."""
    import keras

    targets = {}
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kind = "conv"
        elif isinstance(layer, keras.layers.BatchNormalization):
            kind = "bn"
        else:
            continue
        name = layer.name
        if name.startswith("layer"):
            # layer3_0_conv2 -> layer3.0.conv2; layer3_0_downsample_1 -> layer3.0.downsample.1
            stage, block, rest = name.split("_", 2)
            torch_name = f"{stage}.{block}.{rest.replace('downsample_', 'downsample.')}"
        elif name.startswith("stem_"):
            continue  # the deep stem (ResNetV1c) has no official checkpoint
        else:
            torch_name = name
        targets.update(_layer_targets(layer, prefix + torch_name, kind))
    return targets


def head_targets(head, prefix="head."):
    """Torch names of the official `DANetHead`."""
    targets = {}
    for branch in ("conv5a", "conv5c", "conv51", "conv52"):
        sequential = head.get_layer(branch)
        targets.update(_layer_targets(sequential.get_layer("conv"), f"{prefix}{branch}.0", "conv"))
        targets.update(_layer_targets(sequential.get_layer("bn"), f"{prefix}{branch}.1", "bn"))
    pam = head.get_layer("sa")
    for projection in ("query_conv", "key_conv", "value_conv"):
        targets.update(_layer_targets(getattr(pam, projection), f"{prefix}sa.{projection}", "conv"))
    targets[f"{prefix}sa.gamma"] = (pam.gamma, None)
    targets[f"{prefix}sc.gamma"] = (head.get_layer("sc").gamma, None)
    for classifier in ("conv6", "conv7", "conv8"):
        layer = head.get_layer(classifier).get_layer("conv")
        targets.update(_layer_targets(layer, f"{prefix}{classifier}.1", "conv"))
    return targets


def assign_state(targets, state, ignore_prefixes=(), source="checkpoint"):
    """Checks names and shapes, then assigns. Raises with every problem listed."""
    relevant = {k: v for k, v in state.items()
                if not k.endswith(IGNORED_SUFFIXES) and not k.startswith(tuple(ignore_prefixes))}
    missing = sorted(set(targets) - set(relevant))
    unexpected = sorted(set(relevant) - set(targets))
    mis_shaped = []
    converted = {}
    for name in sorted(set(targets) & set(relevant)):
        variable, transform = targets[name]
        value = np.asarray(relevant[name], np.float32)
        value = transform(value) if transform else value.reshape(value.shape or (1,))
        if tuple(value.shape) != tuple(variable.shape):
            mis_shaped.append(f"{name}: checkpoint {tuple(relevant[name].shape)} -> "
                              f"{tuple(value.shape)}, model {tuple(variable.shape)}")
        converted[name] = value
    if missing or unexpected or mis_shaped:
        lines = [f"{source} does not match the model:"]
        for title, items in (("missing", missing), ("unexpected", unexpected),
                             ("mis-shaped", mis_shaped)):
            if items:
                lines.append(f"  {len(items)} {title}: " + "; ".join(items[:50])
                             + (" ..." if len(items) > 50 else ""))
        raise WeightConversionError("\n".join(lines))
    for name, value in converted.items():
        targets[name][0].assign(value)
    return sorted(converted)


def load_official_danet(model, state):
    """Assigns an official DANet state dict (backbone `pretrained.*`, head `head.*`).

    Returns:
        The list of converted tensor names.
    """
    require_danet_head(model, "An official DANet checkpoint")
    targets = backbone_targets(model.get_layer("backbone"), "pretrained.")
    targets.update(head_targets(model.get_layer("head")))
    return assign_state(targets, state, ignore_prefixes=("pretrained.fc.",),
                        source="DANet checkpoint")


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
        import keras

        try:
            application = getattr(keras.applications, f"ResNet{depth}")(
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
        copied = load_keras_applications_backbone(backbone, application)
        return f"backbone: keras.applications ResNet{depth} weights ({spec}), {len(copied)} layers"
    if layout != "torchvision":
        raise ValueError(
            f"{spec}: torchvision .pth weights need model.backbone_layout=torchvision."
        )
    names = load_torchvision_backbone(backbone, load_torch_state_dict(spec))
    return f"backbone: torchvision weights from {spec}, {len(names)} tensors"
