"""Loading a trained model from a `.keras` file or a SavedModel directory."""

import os
import sys

import numpy as np

PRECISIONS = ("float32", "bfloat16")
_warned = []


def cpu_has_native_bfloat16(cpuinfo="/proc/cpuinfo"):
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16)."""
    try:
        with open(cpuinfo) as f:
            flags = set(f.read().split())
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def warn_if_bfloat16_is_emulated(precision):
    """Says once, on stderr, that bfloat16 will run but slowly on this CPU."""
    if precision == "bfloat16" and not _warned and not cpu_has_native_bfloat16():
        _warned.append(True)
        print("note: this CPU has no native bfloat16 (avx512_bf16 / amx_bf16): bfloat16 runs, "
              "but slower than float32 here.", file=sys.stderr)


def load_logits_fn(path, precision="float32"):
    """A callable normalised `(1, H, W, 3)` float32 -> logits, and the class count.

    Accepts a `.keras` file (the fused-logits branch of `DANet`, at
    `precision`), a SavedModel directory written by `danet_tf.deploy.export`
    (its `predict_logits` signature, at the precision it was exported with)
    or an OpenVINO `.xml` (`precision` is its inference precision hint).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"--precision must be one of {PRECISIONS}. Received: {precision!r}")
    if os.path.isdir(path):
        if precision != "float32":
            raise ValueError(f"{path}: a SavedModel runs at the precision it was exported with; "
                             "export it with --precision bfloat16 instead.")
        import tensorflow as tf

        signature = tf.saved_model.load(path).signatures["predict_logits"]

        def logits_fn(x):
            return signature(images=tf.constant(x, tf.float32))["logits"].numpy()

        num_classes = int(signature.structured_outputs["logits"].shape[-1])
        return logits_fn, num_classes
    if path.endswith(".xml"):
        from danet_tf.deploy.export import compile_openvino, run_openvino

        warn_if_bfloat16_is_emulated(precision)
        compiled = compile_openvino(path, precision)

        def openvino_logits(x):
            return run_openvino(compiled, x)

        return openvino_logits, int(compiled.output(0).get_partial_shape()[-1].get_length())
    if not path.endswith(".keras"):
        raise ValueError(
            "--model must be a .keras file, a SavedModel directory or an OpenVINO .xml. "
            f"Received: {path!r}"
        )
    import keras

    from danet_tf.deploy.export import inference_graph  # also registers the custom layers

    warn_if_bfloat16_is_emulated(precision)
    net = inference_graph(keras.models.load_model(path), precision)

    def logits_fn(x):
        return np.asarray(net(x, training=False))

    return logits_fn, int(net.output.shape[-1])
