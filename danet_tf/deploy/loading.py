"""Loading a trained model (`.keras`, SavedModel or OpenVINO) as a logits function."""

import os
import sys

import keras
import numpy as np

from danet_tf.data.catalog import class_names_for, palette_for
from danet_tf.deploy import layout
from danet_tf.models.precision import (
    CHOICES,
    check_precision,
    cpu_flags,
    cpu_has_native_bfloat16,
    int8_class,
)
from danet_tf.models.preset_catalog import MMSEG_CONFIGS
from danet_tf.models.presets import is_preset_dir, load_preset, preset_metadata
from danet_tf.run_config import load_config_for_model

_warned = []


def warn_if_bfloat16_is_emulated(precision):
    """Says once, on stderr, that bfloat16 will run but slowly on this CPU."""
    if precision == "bfloat16" and not _warned and not cpu_has_native_bfloat16():
        _warned.append(True)
        print("note: this CPU has no bfloat16 matrix units (amx_bf16): bfloat16 runs, but "
              "slower than float32 here.", file=sys.stderr)


def exported_int8_ir(path):
    """The int8 OpenVINO IR exported with the model at `path`, or `None`: the
    `<name>_int8.xml` beside an `.xml`, or for an export folder's
    `<name>.keras` the one of the folder's newest version (the version the
    `.keras` file was written with)."""
    if path.endswith("_int8.xml"):
        return path
    if path.endswith(".xml"):
        candidate = path[:-len(".xml")] + "_int8.xml"
        return candidate if os.path.exists(candidate) else None
    if not path.endswith(".keras"):
        return None
    folder = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)[:-len(".keras")]
    export_dir = os.path.dirname(folder)
    if os.path.basename(folder) != name:
        return None
    newest = layout.next_version(export_dir, name) - 1
    candidate = os.path.join(layout.openvino_dir(export_dir, name, newest), f"{name}_int8.xml")
    return candidate if newest > 0 and os.path.exists(candidate) else None


def choose_precision(path, precision="auto", flags=None):
    """`(path, precision, reason)`: what `--precision` asks for, or for
    `"auto"` the fastest path this CPU has among what the model offers: the
    int8 IR where one was exported, else bfloat16 with AMX-BF16 (a Keras
    model), else float32. `reason` is one line (`None` unless `"auto"`)."""
    check_precision(precision, CHOICES)
    if precision != "auto":
        return path, precision, None
    flags = cpu_flags() if flags is None else flags
    int8 = exported_int8_ir(path)
    if int8:
        return int8, "float32", (f"int8 OpenVINO IR {int8} (exported with the model; this CPU: "
                                 f"{int8_class(flags)})")
    keras_model = path.endswith(".keras") or is_preset_dir(path)
    if keras_model and "amx_bf16" in flags:
        return path, "bfloat16", "bfloat16 (this CPU has AMX-BF16 and no int8 IR was exported)"
    why = "this CPU has no AMX-BF16" if keras_model else "it runs as exported"
    return path, "float32", f"float32 (no int8 IR exported with the model; {why})"


def load_logits_fn(path, precision="auto", static_shapes=True):
    """A callable normalised `(B, H, W, 3)` float32 -> logits, and the class count.

    `precision="auto"` runs what `choose_precision` picks and says so in one
    line on stderr; `"float32"` or `"bfloat16"` runs the model at `path` at
    that precision.

    Accepts a `.keras` file (the fused-logits branch of `DANet`, at
    `precision`), a SavedModel directory written by `danet_tf.deploy.export`
    (its `predict_logits` signature, at the precision it was exported with)
    or an OpenVINO `.xml`, float32 or int8 (`<name>_int8.xml`): `precision`
    is its inference precision hint, which for an int8 IR applies to what
    the IR leaves in float (the attention). An `.xml` is compiled once per
    input shape (`static_shapes`, see `openvino_runtime.OpenVinoLogits`) or
    once for all shapes (`static_shapes=False`).
    """
    path, precision, reason = choose_precision(path, precision)
    if reason:
        print(f"precision auto: {reason}", file=sys.stderr)
    if os.path.isdir(path) and not is_preset_dir(path):
        return _saved_model_logits_fn(path, precision)
    if path.endswith(".xml"):
        from danet_tf.deploy.openvino_runtime import OpenVinoLogits

        warn_if_bfloat16_is_emulated(precision)
        logits_fn = OpenVinoLogits(path, precision, static_shapes)
        return logits_fn, logits_fn.num_classes
    from danet_tf.deploy.export import inference_graph  # also registers the custom layers

    model = load_keras_model(path)
    warn_if_bfloat16_is_emulated(precision)
    net = inference_graph(model, precision)
    return compiled_logits_fn(net), int(net.output.shape[-1])


def _saved_model_logits_fn(path, precision):
    """The `predict_logits` signature of the SavedModel at `path`, and its class count."""
    if precision != "float32":
        raise ValueError(f"{path}: a SavedModel runs at the precision it was exported with; "
                         "export it with --precision bfloat16 instead.")
    import tensorflow as tf

    signature = tf.saved_model.load(path).signatures["predict_logits"]

    def logits_fn(x):
        return signature(images=tf.constant(x, tf.float32))["logits"].numpy()

    return logits_fn, int(signature.structured_outputs["logits"].shape[-1])


def resolve_model(path):
    """`--model` as a path: a catalogue preset name becomes its cached preset
    directory (downloaded and converted on first use); anything else is
    returned as it is."""
    if os.path.exists(path) or path not in MMSEG_CONFIGS:
        return path
    from danet_tf.models.preset_cache import cached_preset

    return cached_preset(path)


def load_keras_model(path):
    """The Keras `DANet` of a `.keras` file or a preset directory."""
    if is_preset_dir(path):
        return load_preset(path)
    if not path.endswith(".keras"):
        raise ValueError(
            "--model must be a .keras file, a preset (directory or name), a SavedModel "
            f"directory or an OpenVINO .xml. Received: {path!r}")
    return keras.models.load_model(path)


def compiled_logits_fn(net):
    """`net` as a NumPy-in, NumPy-out callable for `(B, H, W, 3)` of any size.

    On TensorFlow it is traced once as a graph for every batch and size, so
    that Grappler fuses conv + bias + ReLU (an eager call runs op by op). The
    graph keeps its variables: weights frozen into constants were a little
    faster but tripled the peak memory at 1024x2048 (docs/performance.md,
    "Design choices measured").
    """
    if keras.backend.backend() != "tensorflow":
        return lambda x: keras.ops.convert_to_numpy(net(x, training=False))
    import tensorflow as tf

    graph = tf.function(lambda x: net(x, training=False), input_signature=[
        tf.TensorSpec((None, None, None, 3), tf.float32)])
    return lambda x: graph(tf.constant(x, tf.float32)).numpy()


def class_count(model):
    """Classes a loaded Keras model predicts (its fused logits' channels)."""
    output = model.output["logits"] if isinstance(model.output, dict) else model.output
    return int(output.shape[-1])


def check_class_count(model_path, num_classes, expected, source):
    """Refuses a model whose class count is not the config's, in one line."""
    if num_classes != expected:
        raise ValueError(
            f"{model_path} predicts {num_classes} classes but data.num_classes is {expected} in "
            f"{source}: pass the run's config (--config runs/<name>/config.json) or "
            "--set data.num_classes=...")


def class_names_and_palette(model_path, dataset, num_classes):
    """Class names and colours for a model's pictures: `dataset`'s when given,
    else those of the run's config saved next to the model."""
    config, _ = load_config_for_model(model_path, None, None)
    names = None
    if not dataset and config.data.num_classes == num_classes:
        names = config.data.class_names
    palette = None
    if not dataset and is_preset_dir(model_path):
        palette = preset_metadata(model_path).get("palette")
    dataset = dataset or config.data.name
    if palette is None or len(palette) != num_classes:
        palette = palette_for(dataset, num_classes)
    return names or class_names_for(dataset, num_classes), np.asarray(palette, np.uint8)
