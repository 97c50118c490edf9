"""Export: TF Serving SavedModel, TFLite (LiteRT) fp32/fp16/int8, ONNX and `.keras`.

SavedModel signatures (all take a batch; `classes` is int32 `(B, H, W)`):
- `serving_default`: `images` uint8 `(B, H, W, 3)` of any H, W -> `classes`
  (and `probabilities` float32 `(B, H, W, C)` with `include_probabilities`).
- `serving_bytes`: `image_bytes` string `(B,)` of PNG/JPEG files (REST clients
  send `{"b64": ...}`) -> the same outputs. Images in one request must share
  a size.
- `predict_logits`: ImageNet-normalised float32 `(B, H, W, 3)` -> `logits`,
  for sliding-window / multi-scale inference on the served model.
"""

import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from danet_tf.deploy import layout, openvino_runtime
from danet_tf.files import atomic_path, write_bytes
from danet_tf.models.preprocessing import normalize

TFLITE_MODES = ("fp32", "fp16", "dynamic_int8", "int8")


def inference_graph(model, precision="float32"):
    """The fused-logits model with BN folded into the convs (a frozen copy), at
    `precision` (float32 inputs and logits either way); other Keras models as
    they are."""
    if hasattr(model, "inference_model"):
        return model.inference_model(fold_batch_norm=True, precision=precision)
    return model


def with_unchunked_attention(model):
    """`model`, or a copy with its weights whose position attention is
    unchunked (`attention_block_size=None`)."""
    config = model.get_config() if hasattr(model, "inference_model") else {}
    if config.get("attention_block_size") is None:
        return model
    copy = type(model).from_config({**config, "attention_block_size": None})
    copy.set_weights(model.get_weights())
    return copy


def check_images(images):
    """Refuses a batch that is not `(B, H, W, 3)` with an InvalidArgumentError.

    Loaded signatures do not enforce their input shapes, and a convolution
    given a rank-3 tensor aborts the whole process (a CHECK failure): check
    before the model runs.
    """
    # EnsureShape checks the fed tensor at run time (assert_rank would be
    # folded away: the graph already believes the rank is 4).
    images = tf.ensure_shape(images, [None, None, None, 3],
                             name="expects_batch_height_width_3_channels")
    tf.debugging.assert_positive(tf.reduce_prod(tf.shape(images)[1:3]),
                                 message="images must have a non-zero height and width")
    return images


def serving_functions(model, include_probabilities=False):
    """The three signature functions (`tf.function`s with input signatures)."""
    net = inference_graph(model)

    def outputs(logits):
        result = {"classes": tf.cast(tf.argmax(logits, axis=-1), tf.int32)}
        if include_probabilities:
            result["probabilities"] = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
        return result

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])
    def serve_images(images):
        return outputs(net(normalize(check_images(images)), training=False))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve_bytes(image_bytes):
        images = tf.map_fn(
            lambda b: tf.io.decode_image(b, channels=3, expand_animations=False),
            image_bytes, fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8),
        )
        return outputs(net(normalize(check_images(images)), training=False))

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="images")])
    def predict_logits(images):
        return {"logits": tf.cast(net(check_images(images), training=False), tf.float32)}

    return {"serving_default": serve_images, "serving_bytes": serve_bytes,
            "predict_logits": predict_logits}


def export_saved_model(model, export_dir, name, version=1, include_probabilities=False,
                       overwrite=False, precision="float32"):
    """Writes `export_dir/name/version/` for TF Serving; returns the path.

    The SavedModel is written to a temporary directory next to the target and
    renamed into place, so a failed export never leaves a half-written
    version directory (which TF Serving would try to load). `precision`
    `"bfloat16"` computes in bfloat16 (for CPUs with AMX and TPUs); the
    signatures' inputs and outputs are the same as in float32.
    """
    if not str(version).isdigit() or int(version) < 1:
        raise ValueError(f"version must be a positive integer (TF Serving). Received: {version!r}")
    target = layout.saved_model_dir(export_dir, name, version)
    with atomic_path(target, overwrite) as tmp:
        net = inference_graph(model, precision)
        archive = keras.export.ExportArchive()
        archive.track(net)
        for endpoint, fn in serving_functions(net, include_probabilities).items():
            archive.add_endpoint(endpoint, fn)
        archive.write_out(tmp, verbose=False)
    return target


def _write_tflite_source(net, input_size, directory):
    """A SavedModel of `net` at a fixed `(1, H, W, 3)`, for the TFLite converter
    (through a SavedModel, so that the converter freezes the weights)."""
    height, width = input_size
    archive = keras.export.ExportArchive()
    archive.track(net)
    archive.add_endpoint(
        "serving_default",
        lambda images: tf.cast(net(images, training=False), tf.float32),
        input_signature=[tf.TensorSpec([1, height, width, 3], tf.float32, name="images")],
    )
    archive.write_out(directory, verbose=False)


def _check_tflite_mode(mode):
    if mode not in TFLITE_MODES:
        raise ValueError(f"mode must be one of {TFLITE_MODES}. Received: {mode!r}")


def tflite_bytes(model, mode, input_size, representative_images=None):
    """Converts the fused-logits model at a fixed `(H, W)` to a TFLite flatbuffer.

    The TFLite model takes ImageNet-normalised float32 `(1, H, W, 3)` and
    returns float32 logits `(1, H, W, C)`.

    Args:
        mode: `fp32`, `fp16` (float16 weights), `dynamic_int8` (int8 weights,
            float activations) or `int8` (int8 weights and activations,
            calibrated on `representative_images`, normalised `(H, W, 3)`).
    """
    _check_tflite_mode(mode)
    with tempfile.TemporaryDirectory() as tmp:
        _write_tflite_source(inference_graph(model), input_size, tmp)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        return _convert(converter, mode, representative_images)


def _convert(converter, mode, representative_images):
    if mode != "fp32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    if mode == "int8":
        if representative_images is None:
            raise ValueError("int8 TFLite needs representative_images for calibration.")

        def representative():
            for image in representative_images:
                yield [np.asarray(image, np.float32)[None]]

        converter.representative_dataset = representative
    return converter.convert()


def export_tflite(model, directory, name, input_size, modes=TFLITE_MODES,
                  representative_images=None, overwrite=False):
    """Writes `directory/name_<mode>.tflite` for each mode (atomic); returns paths.

    Existing files are refused unless `overwrite` (before anything is
    converted), as SavedModel versions are. The model is folded and written
    for the converter once, for all modes.
    """
    for mode in modes:
        _check_tflite_mode(mode)
    paths = {mode: os.path.join(directory, f"{name}_{mode}.tflite") for mode in modes}
    existing = [path for path in paths.values() if os.path.exists(path)]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists; pass --overwrite to replace it.")
    os.makedirs(directory, exist_ok=True)
    with tempfile.TemporaryDirectory() as source:
        _write_tflite_source(inference_graph(model), input_size, source)
        for mode in modes:
            converter = tf.lite.TFLiteConverter.from_saved_model(source)
            write_bytes(paths[mode], _convert(converter, mode, representative_images))
    return paths


def run_tflite(path, images):
    """Runs a TFLite model with `ai_edge_litert` on normalised `(N, H, W, 3)` images."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    results = []
    for image in images:
        interpreter.set_tensor(inp["index"], np.asarray(image, np.float32)[None])
        interpreter.invoke()
        results.append(interpreter.get_tensor(out["index"])[0])
    return np.stack(results)


def export_openvino(model, directory, name, overwrite=False):
    """Writes `directory/name.xml` + `.bin` (OpenVINO IR) of the BN-folded
    fused-logits model, with dynamic batch, height and width; returns the
    `.xml` path.

    The IR always holds the unchunked position attention, whatever the
    model's `attention_block_size`: under OpenVINO it was both faster and
    smaller at 1024x2048 (DANet-101, bf16: 37.9 s and 2.56 GB unchunked
    against 52.2 s and 2.91 GB for the chunked graph's Loop;
    `python -m benchmarks.run --only official`).

    Input: ImageNet-normalised float32 `(B, H, W, 3)`; output: float32 logits
    `(B, H, W, C)`. The directory is written whole and renamed into place,
    refused when it exists unless `overwrite`. Run it with `run_openvino`;
    its precision is a runtime choice (`INFERENCE_PRECISION_HINT`).
    """
    net = inference_graph(with_unchunked_attention(model))
    spec = keras.InputSpec(shape=(None, None, None, 3), dtype="float32")
    with atomic_path(directory, overwrite) as tmp:
        os.makedirs(tmp)
        net.export(os.path.join(tmp, f"{name}.xml"), format="openvino", verbose=False,
                   input_signature=[spec])
    return os.path.join(directory, f"{name}.xml")


def compile_openvino(path, precision="float32"):
    """An OpenVINO CPU compiled model of the `.xml` at `path`; `precision`
    `"bfloat16"` sets `INFERENCE_PRECISION_HINT=bf16` (f32 otherwise)."""
    return openvino_runtime.compile_for_shape(openvino_runtime.shared_core(), path, precision)


def run_openvino(compiled, images):
    """Logits `(N, H, W, C)` float32 of normalised `(N, H, W, 3)` images."""
    result = compiled(np.asarray(images, np.float32))
    return np.asarray(result[compiled.output(0)], np.float32)


def export_keras(model, path):
    """Saves the model as `.keras` via a temporary file and a rename."""
    with atomic_path(path) as tmp:
        model.save(tmp)
    return path


def export_onnx(model, path, opset_version=17):
    """Exports the fused-logits model through Keras' ONNX exporter (tf2onnx)."""
    net = inference_graph(model)
    net(np.zeros((1, 32, 32, 3), np.float32))  # Keras' exporter wants a called model.
    with atomic_path(path) as tmp:
        net.export(tmp, format="onnx", opset_version=opset_version, verbose=False)
    return path
