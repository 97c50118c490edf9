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
    for layer in _layers_by_path(model).values():
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
    def numpy64(variable):
        return keras.ops.convert_to_numpy(variable).astype(np.float64)

    kernel = numpy64(conv.kernel)
    out_channels = kernel.shape[-1]
    bias = numpy64(conv.bias) if conv.use_bias else np.zeros(out_channels)
    gamma = numpy64(bn.gamma) if bn.scale else np.ones(out_channels)
    beta = numpy64(bn.beta) if bn.center else np.zeros(out_channels)
    mean = numpy64(bn.moving_mean)
    variance = numpy64(bn.moving_variance)
    scale = gamma / np.sqrt(variance + bn.epsilon)
    return {"kernel": kernel * scale, "bias": (bias - mean) * scale + beta}


def _folding_clone(pairs):
    """A `clone_model` clone function: folded convs get a bias, their BNs
    become `Identity` layers; everything else is rebuilt from its config."""
    convs = {id(conv) for conv, _ in pairs}
    norms = {id(bn) for _, bn in pairs}

    def clone(layer):
        config = layer.get_config()
        if id(layer) in norms:
            return keras.layers.Identity(name=layer.name, dtype=layer.dtype_policy.name)
        if id(layer) in convs:
            config["use_bias"] = True
        return layer.__class__.from_config(config)

    return clone


def _call_without_mask(layer, *args, **kwargs):
    """Calls a cloned layer; the `Identity` that replaces a BN takes no `mask`
    (which Keras recorded for the BN's call)."""
    if isinstance(layer, keras.layers.Identity):
        kwargs.pop("mask", None)
        kwargs.pop("training", None)
    return layer(*args, **kwargs)


def _layers_by_path(model):
    """`{path: layer}` of every layer at any depth (by the names of the
    models that contain it, so a clone's layers line up with the original's)."""
    found = {}

    def walk(container, prefix):
        for layer in container.layers:
            path = f"{prefix}{layer.name}"
            found[path] = layer
            if isinstance(layer, keras.Model):
                walk(layer, f"{path}/")

    walk(model, "")
    return found


def fold_batch_norm(model):
    """An inference copy of a functional `model` with every BN folded into its conv.

    A graph transform: the model is cloned layer by layer
    (`keras.models.clone_model(recursive=True)`, nested Functional and
    Sequential models included), each conv that feeds a BN gets a bias and
    the BN becomes an `Identity`; weights are copied, folded ones computed in
    float64 one pair at a time (ResNet-101's convs are 170 MB in float32).

    Args:
        model: a built functional Keras model (e.g. `DANet`).

    Returns:
        A plain functional `keras.Model` with the same inputs and outputs,
        equal to `model` in inference mode (`training=False`) up to float32
        rounding. It does not share weights with `model`, and saves and
        reloads as `.keras` like any functional model.

    Example:
    >>> folded = fold_batch_norm(model)
    >>> folded(images)["logits"]  # == model(images)["logits"]
    """
    functional = isinstance(model, keras.Model) and hasattr(model, "_run_through_graph")
    if not (functional or isinstance(model, keras.Sequential)):
        raise ValueError(
            f"fold_batch_norm needs a functional or Sequential Keras model (a graph to rewrite); "
            f"received a subclassed {type(model).__name__}."
        )
    pairs = conv_bn_pairs(model)
    if not pairs:
        raise ValueError(f"Model {model.name!r} has no BatchNormalization to fold.")
    folded = keras.models.clone_model(model, clone_function=_folding_clone(pairs),
                                      call_function=_call_without_mask, recursive=True)
    _copy_folded_weights(model, folded, pairs)
    return folded


def _copy_folded_weights(model, folded, pairs):
    """Gives each layer of `folded` its weights from `model`: the folded
    convs' computed from their BN (`pairs`), the others' copied."""
    folded_pairs = {id(conv): bn for conv, bn in pairs}
    originals = _layers_by_path(model)
    for path, layer in _layers_by_path(folded).items():
        source = originals[path]
        if isinstance(layer, keras.Model) or not source.weights:
            continue
        if id(source) in folded_pairs:
            weights = folded_conv_weights(source, folded_pairs[id(source)])
            layer.kernel.assign(weights["kernel"].astype(layer.kernel.dtype))
            layer.bias.assign(weights["bias"].astype(layer.bias.dtype))
        elif not isinstance(layer, keras.layers.Identity):
            layer.set_weights(source.get_weights())
