"""Folding each BatchNorm into the conv before it, for inference.

In inference mode a BN is a per-channel affine map,
`y = gamma * (z - mean) / sqrt(var + eps) + beta`. After a conv
`z = x * W + b` it folds into that conv: with `s = gamma / sqrt(var + eps)`,
`W' = W * s` (per output channel) and `b' = (b - mean) * s + beta`. The folded
model computes the same outputs without the BN's full-size output tensors:
less peak memory and time at inference (and what TFLite's converter does
anyway). It is frozen: the batch statistics it was folded with are constants.
"""

import keras
import numpy as np


def conv_bn_pairs(model):
    """Every `(conv, bn)` pair of `model`, nested layers included.

    Args:
        model: a built Keras model.

    Returns:
        A list of `(keras.layers.Conv2D, keras.layers.BatchNormalization)`,
        one per BN layer, the conv being the layer that feeds the BN.

    Raises:
        ValueError: a BN that is not fed by a conv, or does not normalise the
            last (channel) axis.
    """
    pairs = []
    # `_flatten_layers` is Keras' own recursive walk; it also reaches the
    # Sequentials built inside subclassed layers such as `DANetHead`.
    for layer in model._flatten_layers(include_self=False):
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        producer = layer.input._keras_history.operation
        if not isinstance(producer, keras.layers.Conv2D) or layer.axis not in (-1, 3):
            raise ValueError(
                f"Cannot fold BatchNormalization {layer.path!r}: it must normalise the channel "
                f"axis of a Conv2D's output; its input comes from {producer.name!r} "
                f"({type(producer).__name__}) and axis={layer.axis}."
            )
        pairs.append((producer, layer))
    return pairs


def folded_conv_weights(conv, bn):
    """`{"kernel": W', "bias": b'}` of `conv` followed by `bn`, in float64.

    Shapes: kernel `(kh, kw, in, out)`, bias `(out,)`.
    """
    kernel = np.asarray(conv.kernel, np.float64)
    out_channels = kernel.shape[-1]
    bias = np.asarray(conv.bias, np.float64) if conv.use_bias else np.zeros(out_channels)
    gamma = np.asarray(bn.gamma, np.float64) if bn.scale else np.ones(out_channels)
    beta = np.asarray(bn.beta, np.float64) if bn.center else np.zeros(out_channels)
    mean = np.asarray(bn.moving_mean, np.float64)
    variance = np.asarray(bn.moving_variance, np.float64)
    scale = gamma / np.sqrt(variance + bn.epsilon)
    return {"kernel": kernel * scale, "bias": (bias - mean) * scale + beta}


def fold_batch_norm(model):
    """An inference copy of `model` with every BN folded into its conv.

    Args:
        model: a model whose class takes a `folded_batch_norm` config option
            (`DANet`; the copy is built with `folded_batch_norm=True` from
            the same config).

    Returns:
        A new model of the same class whose outputs equal `model`'s in
        inference mode (`training=False`) up to float32 rounding. It does not
        share weights with `model`.

    Example:
    >>> folded = fold_batch_norm(model)
    >>> folded.inference_model()(images)  # == model(images)["logits"]
    """
    config = model.get_config()
    if "folded_batch_norm" not in config:
        raise ValueError(
            f"fold_batch_norm needs a model with a `folded_batch_norm` option (e.g. DANet); "
            f"{type(model).__name__} has none."
        )
    if config["folded_batch_norm"]:
        raise ValueError(f"Model {model.name!r} is already folded (folded_batch_norm=True).")
    folded = type(model).from_config({**config, "folded_batch_norm": True})
    pairs = {conv.path: (conv, bn) for conv, bn in conv_bn_pairs(model)}
    source = {variable.path: variable for variable in model.weights}
    # One pair's float64 weights at a time: holding all of them would double
    # the model's memory (ResNet-101 convs are 170 MB in float32).
    current_path, current = None, None
    for variable in folded.weights:
        layer_path, _, name = variable.path.rpartition("/")
        if layer_path in pairs:
            if layer_path != current_path:
                current_path, current = layer_path, folded_conv_weights(*pairs[layer_path])
            value = current[name]
        elif variable.path in source:
            value = source[variable.path]
        else:
            raise ValueError(
                f"The folded model has a weight {variable.path!r} that {model.name!r} lacks."
            )
        variable.assign(np.asarray(value).astype(variable.dtype))
    return folded
