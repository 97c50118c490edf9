"""DANet's functional graph: dilated ResNet, segmentation head, outputs
resized to the input. One builder for `DANet` and
`danet_tf.models.hub.DANetBackbone`: the same layers, so one weights file
loads into both."""

import keras

from danet_tf.models.context_heads import fcn_aux_head
from danet_tf.models.dilated_resnet import BACKBONES, DilatedResNet, layer4_grid
from danet_tf.models.head import head_output_names, segmentation_head
from danet_tf.models.precision import global_dtype_policy
from danet_tf.models.resize import ResizeLike


def danet_graph(options, dtype=None):
    """`(images, outputs, policy)`: the graph of `DANet`'s checked options
    (`danet_options`), every layer under the dtype policy `dtype` (default:
    the global one at this call)."""
    policy = keras.dtype_policies.get(dtype) if dtype is not None else keras.config.dtype_policy()
    with global_dtype_policy(policy):
        images, outputs = _graph(**options)
    return images, outputs, policy


def _graph(num_classes, backbone, output_stride, multi_grid, deep_stem, aux_head, align_corners,
           dropout, synchronized_bn, attention_block_size, backbone_layout, input_shape, head):
    # === Layers ===
    resnet = DilatedResNet(
        BACKBONES[backbone], output_stride, multi_grid=layer4_grid(multi_grid),
        deep_stem=deep_stem, synchronized_bn=synchronized_bn,
        input_shape=input_shape, layout=backbone_layout, name="backbone",
    )
    head_model = segmentation_head(
        head, resnet.output["layer4"].shape[-1], num_classes, dropout=dropout,
        synchronized_bn=synchronized_bn, attention_block_size=attention_block_size,
        align_corners=align_corners, name="head",
    )

    # === Functional Model ===
    images = keras.Input(input_shape, name="images")
    features = resnet(images)
    head_logits = keras.tree.flatten(head_model(features["layer4"]))
    outputs = {
        key: ResizeLike(align_corners, name=key)([logits, images])
        for key, logits in zip(head_output_names(head), head_logits)
    }
    if aux_head:
        aux = fcn_aux_head(features["layer3"], num_classes, synchronized_bn, dropout=dropout)
        outputs["aux_logits"] = ResizeLike(align_corners, name="aux_logits")([aux, images])
    return images, outputs
