"""Segmentation heads on the layer4 features: the official `DANetHead`, its
single-module ablations (PAM only, CAM only), the `model.head` registry
(`HEADS`, with the context heads of `context_heads.py`) and the accessors of
a head's attention modules.

All are functional graphs (like the backbone), so graph transforms such as
`fold_batch_norm` see every conv and BatchNorm.
"""

import dataclasses

import keras

from danet_tf.models.attention import ChannelAttention, PositionAttention
from danet_tf.models.context_heads import aspp_head, classifier, conv_bn_relu, fcn_head, psp_head


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
    names (`attention_layers(head)` gives the two modules).

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


def attention_branch_head(
    in_channels,
    num_classes,
    branch,
    dropout=0.1,
    synchronized_bn=False,
    attention_block_size=None,
    name="head",
):
    """One branch of `DANetHead` alone: the paper's "Dilated FCN + PAM" or
    "+ CAM" ablation (Table 1).

    `branch="pam"`: `conv5a -> PAM (sa) -> conv51 -> conv6`; `branch="cam"`:
    `conv5c -> CAM (sc) -> conv52 -> conv7`, with the official layer names
    and widths (`in_channels // 4`).

    Returns:
        A `keras.Model` mapping `(batch, h, w, in_channels)` to a list of one
        `(batch, h, w, num_classes)` logits.
    """
    inter = in_channels // 4
    features = keras.Input((None, None, in_channels), name="features")
    with keras.name_scope(name):
        if branch == "pam":
            x = conv_bn_relu(inter, "conv5a", synchronized_bn)(features)
            x = PositionAttention(block_size=attention_block_size, name="sa")(x)
            x = conv_bn_relu(inter, "conv51", synchronized_bn)(x)
            logits = classifier(num_classes, dropout, "conv6")(x)
        else:
            x = conv_bn_relu(inter, "conv5c", synchronized_bn)(features)
            x = ChannelAttention(name="sc")(x)
            x = conv_bn_relu(inter, "conv52", synchronized_bn)(x)
            logits = classifier(num_classes, dropout, "conv7")(x)
    return keras.Model(features, [logits], name=name)


@dataclasses.dataclass(frozen=True)
class HeadKind:
    """One `model.head` choice: its title, the model outputs it gives, its builder
    `build(in_channels, num_classes, dropout, synchronized_bn, attention_block_size,
    align_corners, name)` and the attention modules it has (`"pam"`, `"cam"`)."""

    title: str
    outputs: tuple
    build: object
    attention: tuple = ()


def _danet(c, n, dropout, sync, block, align, name):
    return DANetHead(c, n, dropout=dropout, synchronized_bn=sync, attention_block_size=block,
                     name=name)


def _branch(kind):
    def build(c, n, dropout, sync, block, align, name):
        return attention_branch_head(c, n, kind, dropout, sync, block, name=name)

    return build


# The `model.head` choices, in the ablation's order (the context modules, then
# attention); DANet's three outputs are the fused, position and channel logits.
HEADS = {
    "fcn": HeadKind("dilated FCN", ("logits",),
                    lambda c, n, dropout, sync, block, align, name:
                    fcn_head(c, n, dropout, sync, name=name)),
    "psp": HeadKind("PSPNet head", ("logits",),
                    lambda c, n, dropout, sync, block, align, name:
                    psp_head(c, n, dropout, sync, align, name=name)),
    "aspp": HeadKind("DeepLabV3 (ASPP) head", ("logits",),
                     lambda c, n, dropout, sync, block, align, name:
                     aspp_head(c, n, dropout, sync, align, name=name)),
    "pam": HeadKind("dilated FCN + PAM", ("logits",), _branch("pam"), attention=("pam",)),
    "cam": HeadKind("dilated FCN + CAM", ("logits",), _branch("cam"), attention=("cam",)),
    "danet": HeadKind("DANet", ("logits", "pam_logits", "cam_logits"), _danet,
                      attention=("pam", "cam")),
}


def head_choice(kind):
    """The `HeadKind` named `kind`; a one-line error names the choices."""
    if kind not in HEADS:
        raise ValueError(f"head must be one of {tuple(HEADS)}. Received: head={kind!r}")
    return HEADS[kind]


def segmentation_head(kind, in_channels, num_classes, dropout=0.1, synchronized_bn=False,
                      attention_block_size=None, align_corners=True, name="head"):
    """The head named by `kind` (a key of `HEADS`), as a functional `keras.Model`."""
    return head_choice(kind).build(in_channels, num_classes, dropout, synchronized_bn,
                                 attention_block_size, align_corners, name)


def head_output_names(kind):
    """The model's main outputs for head `kind`: DANet's three, or `logits` alone."""
    return head_choice(kind).outputs


def head_attention_modules(kind):
    """`("pam", "cam")`, one of them, or `()`: the attention modules head `kind` has."""
    return head_choice(kind).attention


# The heads with a position-attention module (`sa`), whose rows a picture can draw.
POSITION_ATTENTION_HEADS = tuple(sorted(k for k, h in HEADS.items() if "pam" in h.attention))

# Each attention module of a head: its layer's name and the projection whose
# output it reads (the official `sa` after `conv5a`, `sc` after `conv5c`).
ATTENTION_MODULES = {"pam": ("sa", "conv5a"), "cam": ("sc", "conv5c")}


def attention_layers(head):
    """`{"pam": PositionAttention, "cam": ChannelAttention}` of a head model:
    the attention modules it has (both for `danet`, one for `pam` / `cam`,
    none for the context heads)."""
    names = {layer.name for layer in head.layers}
    return {kind: head.get_layer(layer) for kind, (layer, _) in ATTENTION_MODULES.items()
            if layer in names}


def attention_inputs(head, features):
    """`{"pam": ..., "cam": ...}`: what each attention module of `head` reads
    for layer4 `features` (its projection's output, inference mode)."""
    return {kind: head.get_layer(ATTENTION_MODULES[kind][1])(features, training=False)
            for kind in attention_layers(head)}


def require_head(model, kinds, purpose, having):
    """Raises unless `model`'s head is one of `kinds`.

    `purpose` and `having` complete "... needs a model.head=<kinds> model
    (<having>)", e.g. "An official DANet checkpoint", "both attention modules".
    """
    kind = getattr(model, "head_kind", "danet")
    if kind not in kinds:
        raise ValueError(f"{purpose} needs a model.head={' or '.join(kinds)} model ({having}). "
                         f"Received a model with head {kind!r}.")


def require_danet_head(model, purpose):
    """Raises unless `model` has DANet's head (both attention modules)."""
    require_head(model, ("danet",), purpose, "both attention modules")
