"""Export every format and report sizes and agreement with Keras on val images."""

import dataclasses
import itertools
import os

import numpy as np

from danet_tf.data.catalog import class_names_for
from danet_tf.data.pipeline import build_train_dataset, load_examples
from danet_tf.deploy import export
from danet_tf.files import write_text
from danet_tf.models.preprocessing import IMAGENET_MEAN, IMAGENET_STD, normalize


def _center_crop_or_pad(image, size):
    """Normalised `(H, W, 3)` -> `(size[0], size[1], 3)` (bottom/right padded with black)."""
    height, width = size
    out = np.empty((height, width, 3), np.float32)
    out[...] = -np.asarray(IMAGENET_MEAN) / np.asarray(IMAGENET_STD)
    top = max((image.shape[0] - height) // 2, 0)
    left = max((image.shape[1] - width) // 2, 0)
    crop = image[top: top + height, left: left + width]
    out[: crop.shape[0], : crop.shape[1]] = crop
    return out


def val_images(data, size, limit):
    """Up to `limit` normalised val images at `size`."""
    images = [_center_crop_or_pad(np.asarray(normalize(i)), size)
              for i, _ in itertools.islice(load_examples(data, "val").as_numpy_iterator(), limit)]
    return np.stack(images)


def calibration_crops(data, size, count):
    """`count` augmented, normalised train crops of `size` for int8 calibration."""
    data = dataclasses.replace(data, crop_size=tuple(size), batch_size=1)
    return [b[0][0] for b in build_train_dataset(data).take(count).as_numpy_iterator()]


def export_all(model, data, export_dir, name, version, formats, tflite_modes=export.TFLITE_MODES,
               tflite_size=None, calibration_images=32, include_probabilities=False,
               overwrite=False, report_images=16, class_names=None, precision="float32"):
    """Exports `formats`; returns a dict of paths, sizes (bytes) and agreement.

    The exports share one BN-folded inference graph; the agreement is measured
    against `model` itself. `export_dir/name/labels.txt` gets the class names
    (one per line, class id = line number - 1), for serving clients and apps.
    """
    net = export.inference_graph(model)
    names = class_names or class_names_for(data.name, int(net.output.shape[-1]))
    report = {"labels": {"path": write_text(os.path.join(export_dir, name, "labels.txt"),
                                            "\n".join(names) + "\n")}}
    if "saved_model" in formats:
        # bfloat16 (SavedModel only): folded from the model at that precision.
        source = net if precision == "float32" else model
        path = export.export_saved_model(source, export_dir, name, version, include_probabilities,
                                         overwrite, precision)
        report["saved_model"] = {"path": path}
    if "tflite" in formats:
        size = tuple(tflite_size or data.crop_size)
        representative = (calibration_crops(data, size, calibration_images)
                          if calibration_images else None)
        # Versioned like the SavedModel (tflite/<version>/), and refused
        # when they exist unless `overwrite`.
        directory = os.path.join(export_dir, name, "tflite", str(int(version)))
        paths = export.export_tflite(net, directory, name, size, tflite_modes, representative,
                                     overwrite)
        images = val_images(data, size, report_images)
        reference = np.asarray(model.inference_model()(images, training=False))
        for mode, path in paths.items():
            logits = export.run_tflite(path, images)
            report[f"tflite_{mode}"] = {
                "path": path,
                "bytes": os.path.getsize(path),
                "argmax_agreement": float(np.mean(logits.argmax(-1) == reference.argmax(-1))),
                "max_abs_logit_diff": float(np.max(np.abs(logits - reference))),
            }
    if "openvino" in formats:
        report.update(_export_openvino(model, net, data, export_dir, name, version, overwrite,
                                       report_images))
    if "onnx" in formats:
        path = export.export_onnx(net, os.path.join(export_dir, name, f"{name}.onnx"))
        report["onnx"] = {"path": path, "bytes": os.path.getsize(path)}
    return report



def _export_openvino(model, net, data, export_dir, name, version, overwrite, report_images):
    """OpenVINO IR in `name/openvino/<version>/`, compared with Keras at f32
    and bf16 inference precision on val images (at the training crop size)."""
    directory = os.path.join(export_dir, name, "openvino", str(int(version)))
    path = export.export_openvino(net, directory, name, overwrite)
    images = val_images(data, tuple(data.crop_size), report_images)
    reference = np.asarray(model.inference_model()(images, training=False))
    size = sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory))
    report = {}
    for precision in ("float32", "bfloat16"):
        logits = export.run_openvino(export.compile_openvino(path, precision), images)
        report[f"openvino_{precision}"] = {
            "path": path,
            "bytes": size,
            "argmax_agreement": float(np.mean(logits.argmax(-1) == reference.argmax(-1))),
            "max_abs_logit_diff": float(np.max(np.abs(logits - reference))),
        }
    return report
