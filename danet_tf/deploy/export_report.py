"""Export every format and report sizes and agreement with Keras on val images."""

import dataclasses
import itertools
import os

import numpy as np

from danet_tf.data.catalog import class_names_for
from danet_tf.data.pipeline import build_train_dataset
from danet_tf.data.sources import load_examples
from danet_tf.deploy import export, layout
from danet_tf.files import write_text
from danet_tf.models.preprocessing import BLACK, normalize


def _center_crop_or_pad(image, size):
    """Normalised `(H, W, 3)` -> `(size[0], size[1], 3)` (bottom/right padded with black)."""
    height, width = size
    out = np.empty((height, width, 3), np.float32)
    out[...] = BLACK
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


def agreement(logits, reference):
    """How an export's logits compare with Keras float32's on the same images."""
    return {"argmax_agreement": float(np.mean(logits.argmax(-1) == reference.argmax(-1))),
            "max_abs_logit_diff": float(np.max(np.abs(logits - reference)))}


def export_all(model, data, export_dir, name, version, formats, tflite_modes=export.TFLITE_MODES,
               tflite_size=None, calibration_images=32, include_probabilities=False,
               overwrite=False, report_images=16, class_names=None, precision="float32"):
    """Exports `formats`; returns a dict of paths, sizes (bytes) and agreement.

    The exports share one BN-folded inference graph; the agreement is measured
    against `model` itself on val images of `data`. With `data=None` (a
    model without a run config) nothing that needs data runs: the report
    says so in one line, TFLite needs `tflite_size` and its int8 mode
    calibration data. `labels.txt` gets the class names (one per line,
    class id = line number - 1), for serving clients and apps.
    """
    net = export.inference_graph(model)
    num_classes = int(net.output.shape[-1])
    names = class_names or class_names_for(data.name if data else None, num_classes)
    report = {"labels": {"path": write_text(layout.labels_path(export_dir, name),
                                            "\n".join(names) + "\n")}}
    if data is None:
        report["report"] = {"path": "-", "skipped": "no data config (pass --preset or --config "
                                                    "to compare the exports on val images)"}

    def reference_images(size):
        if data is None:
            return None, None
        images = val_images(data, size, report_images)
        return images, np.asarray(model.inference_model()(images, training=False))

    if "saved_model" in formats:
        # bfloat16 (SavedModel only): folded from the model at that precision.
        source = net if precision == "float32" else model
        path = export.export_saved_model(source, export_dir, name, version, include_probabilities,
                                         overwrite, precision)
        report["saved_model"] = {"path": path}
    if "tflite" in formats:
        report.update(_export_tflite(net, data, export_dir, name, version, tflite_modes,
                                     tflite_size, calibration_images, overwrite,
                                     reference_images))
    if "openvino" in formats:
        directory = layout.openvino_dir(export_dir, name, version)
        path = export.export_openvino(net, directory, name, overwrite)
        size = sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory))
        images, reference = reference_images(tuple(data.crop_size) if data else None)
        for precision_hint in ("float32", "bfloat16"):
            entry = {"path": path, "bytes": size}
            if images is not None:
                compiled = export.compile_openvino(path, precision_hint)
                entry.update(agreement(export.run_openvino(compiled, images), reference))
            report[f"openvino_{precision_hint}"] = entry
    if "onnx" in formats:
        path = export.export_onnx(net, layout.onnx_path(export_dir, name))
        report["onnx"] = {"path": path, "bytes": os.path.getsize(path)}
    return report


def _export_tflite(net, data, export_dir, name, version, modes, size, calibration_images,
                   overwrite, reference_images):
    """TFLite files in `tflite/<version>/` (refused when they exist unless
    `overwrite`), each compared with Keras on val images."""
    if size is None and data is None:
        raise ValueError("tflite: give --tflite-size H W (no run config to take the crop "
                         "size from).")
    size = tuple(size or data.crop_size)
    if "int8" in modes and data is None:
        raise ValueError("tflite int8 needs calibration images: pass --preset or --config "
                         "with the training data, or leave int8 out of --tflite-modes.")
    representative = (calibration_crops(data, size, calibration_images)
                      if calibration_images and "int8" in modes else None)
    paths = export.export_tflite(net, layout.tflite_dir(export_dir, name, version), name, size,
                                 modes, representative, overwrite)
    images, reference = reference_images(size)
    report = {}
    for mode, path in paths.items():
        report[f"tflite_{mode}"] = {"path": path, "bytes": os.path.getsize(path)}
        if images is not None:
            report[f"tflite_{mode}"].update(agreement(export.run_tflite(path, images), reference))
    return report
