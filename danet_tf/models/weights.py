"""Checkpoint conversion by name: official DANet and mmseg checkpoints (the
ImageNet backbones are `backbone_weights`).

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
from danet_tf.models.head import attention_layers, require_danet_head

BN_SUFFIXES = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean",
               "running_var": "moving_variance"}
IGNORED_SUFFIXES = ("num_batches_tracked",)


class WeightConversionError(ValueError):
    """The checkpoint does not match the model; the message lists every problem."""


def load_torch_state_dict(path):
    """`{name: float32 ndarray}` from a `.pth`/`.pth.tar` (plain, `{"state_dict"}`
    as the official and mmseg checkpoints, `{"model"}`, with or without a
    `module.` prefix)."""
    return read_torch_checkpoint(path)[0]


def read_torch_checkpoint(path):
    """`(state dict, meta)` of a PyTorch checkpoint; `meta` is the checkpoint's
    `"meta"` dict (mmseg records `CLASSES` and `PALETTE` there), else `{}`.

    Unpickles with `weights_only=True`: tensors and plain containers only, so
    a downloaded file cannot run code.
    """
    try:
        import torch
    except ImportError as err:
        raise ImportError(
            "Reading PyTorch checkpoints needs PyTorch: pip install torch (CPU build is enough)."
        ) from err
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError...
        raise WeightConversionError(
            f"{path}: not a readable PyTorch checkpoint ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''})") from error
    meta = {}
    if isinstance(checkpoint, dict):
        meta = checkpoint.get("meta") if isinstance(checkpoint.get("meta"), dict) else {}
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
            state[name] = tensor.detach().cpu().float().numpy()
    return state, meta


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
            # The deep stem (ResNetV1c) as mmseg names it: stem_conv1 ->
            # stem.3 and stem_bn1 -> stem.4 (ReLUs at 2, 5, 8 hold nothing).
            index = int(name[-1])
            torch_name = f"stem.{3 * index + (0 if kind == 'conv' else 1)}"
        else:
            torch_name = name
        targets.update(_layer_targets(layer, prefix + torch_name, kind))
    return targets


# The head's checkpoint names: Keras sublayer -> (conv name, BN name) for the
# four conv-BN-ReLU blocks, then the attention and classifier names. The
# official `DANetHead` (junfu1115/DANet) and mmsegmentation's `DAHead` hold the
# same layers under other names.
OFFICIAL_HEAD_NAMES = {
    "conv5a": ("conv5a.0", "conv5a.1"), "conv5c": ("conv5c.0", "conv5c.1"),
    "conv51": ("conv51.0", "conv51.1"), "conv52": ("conv52.0", "conv52.1"),
    "query_conv": "sa.query_conv", "key_conv": "sa.key_conv", "value_conv": "sa.value_conv",
    "pam_gamma": "sa.gamma", "cam_gamma": "sc.gamma",
    "conv6": "conv6.1", "conv7": "conv7.1", "conv8": "conv8.1",
}
MMSEG_HEAD_NAMES = {
    "conv5a": ("pam_in_conv.conv", "pam_in_conv.bn"),
    "conv5c": ("cam_in_conv.conv", "cam_in_conv.bn"),
    "conv51": ("pam_out_conv.conv", "pam_out_conv.bn"),
    "conv52": ("cam_out_conv.conv", "cam_out_conv.bn"),
    "query_conv": "pam.query_project", "key_conv": "pam.key_project",
    "value_conv": "pam.value_project",
    "pam_gamma": "pam.gamma.scale", "cam_gamma": "cam.gamma.scale",
    "conv6": "pam_conv_seg", "conv7": "cam_conv_seg", "conv8": "conv_seg",
}
# mmseg's FCN auxiliary head on layer3 (`fcn_aux_head`).
MMSEG_AUX_NAMES = {"aux_conv": ("auxiliary_head.convs.0.conv", "auxiliary_head.convs.0.bn"),
                   "aux_cls": "auxiliary_head.conv_seg"}


def _conv_bn_targets(block, conv_name, bn_name):
    return {**_layer_targets(block.get_layer("conv"), conv_name, "conv"),
            **_layer_targets(block.get_layer("bn"), bn_name, "bn")}


def head_targets(head, names=OFFICIAL_HEAD_NAMES, prefix="head."):
    """Checkpoint names of a DANet head's variables, from a `*_HEAD_NAMES` table."""
    targets = {}
    for branch in ("conv5a", "conv5c", "conv51", "conv52"):
        conv_name, bn_name = names[branch]
        targets.update(_conv_bn_targets(head.get_layer(branch), prefix + conv_name,
                                        prefix + bn_name))
    modules = attention_layers(head)
    pam = modules["pam"]
    for projection in ("query_conv", "key_conv", "value_conv"):
        targets.update(_layer_targets(getattr(pam, projection), prefix + names[projection],
                                      "conv"))
    targets[prefix + names["pam_gamma"]] = (pam.gamma, None)
    targets[prefix + names["cam_gamma"]] = (modules["cam"].gamma, None)
    for classifier in ("conv6", "conv7", "conv8"):
        layer = head.get_layer(classifier).get_layer("conv")
        targets.update(_layer_targets(layer, prefix + names[classifier], "conv"))
    return targets


def aux_head_targets(model):
    """mmseg names of the FCN auxiliary head's variables (`auxiliary_head.*`)."""
    conv_name, bn_name = MMSEG_AUX_NAMES["aux_conv"]
    targets = _conv_bn_targets(model.get_layer("aux_conv"), conv_name, bn_name)
    classifier = model.get_layer("aux_cls").get_layer("conv")
    targets.update(_layer_targets(classifier, MMSEG_AUX_NAMES["aux_cls"], "conv"))
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


def load_mmseg_danet(model, state):
    """Assigns an mmsegmentation DANet state dict (`EncoderDecoder` with a
    `ResNetV1c` backbone `backbone.*`, `DAHead` `decode_head.*` and, with
    `model.aux_head`, the FCN `auxiliary_head.*`).

    Returns:
        The list of converted tensor names.
    """
    return assign_state(mmseg_targets(model), state, source="mmseg DANet checkpoint")


def mmseg_targets(model):
    """`{mmseg name: (variable, transform)}` of a DANet (with `aux_head`, the
    FCN auxiliary head too)."""
    require_danet_head(model, "An mmseg DANet checkpoint")
    targets = backbone_targets(model.get_layer("backbone"), "backbone.")
    targets.update(head_targets(model.get_layer("head"), MMSEG_HEAD_NAMES, "decode_head."))
    if model.aux_head:
        targets.update(aux_head_targets(model))
    return targets


def mmseg_architecture(state):
    """`DANet` constructor arguments read off an mmseg DANet state dict: the
    backbone depth (blocks in layer3, bottleneck or basic), the class count
    (`decode_head.conv_seg`), the deep stem and the auxiliary head.

    Raises:
        WeightConversionError: the tensors are not an mmseg DANet's.
    """
    if "decode_head.conv_seg.weight" not in state or "backbone.layer3.0.conv1.weight" not in state:
        raise WeightConversionError(
            "not an mmseg DANet state dict: expected backbone.layer3.* and "
            "decode_head.conv_seg.weight")
    blocks = len({name.split(".")[2] for name in state if name.startswith("backbone.layer3.")})
    bottleneck = "backbone.layer1.0.conv3.weight" in state
    depths = [d for d, stages in DEPTHS.items()
              if stages[2] == blocks and (d not in BASIC_BLOCK_DEPTHS) == bottleneck]
    if not depths:
        raise WeightConversionError(
            f"mmseg checkpoint: {blocks} blocks in layer3 match no ResNet depth of "
            f"{sorted(DEPTHS)}")
    return {
        "num_classes": int(state["decode_head.conv_seg.weight"].shape[0]),
        "backbone": f"resnet{depths[-1]}",
        "deep_stem": "backbone.stem.0.weight" in state,
        "aux_head": "auxiliary_head.conv_seg.weight" in state,
    }
