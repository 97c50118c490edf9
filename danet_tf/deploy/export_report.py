"""Export every format and report sizes and agreement with Keras on val images."""

import dataclasses
import itertools
import os

import numpy as np

from danet_tf.data.catalog import class_names_for
from danet_tf.data.pipeline import build_train_dataset
from danet_tf.data.sources import load_examples
from danet_tf.deploy import export, layout, quantize
from danet_tf.files import atomic_path, write_text
from danet_tf.models.losses import IGNORE_LABEL
from danet_tf.models.preprocessing import BLACK, normalize

TFLITE_CALIBRATION_IMAGES = 32
NO_INT8_DATA = ("openvino_int8 needs calibration images: pass --calibration-data DIR (a folder "
                "of images), or --preset / --config with the training data.")


def _center_crop_or_pad(image, size, fill=BLACK):
    """`(H, W, ...)` -> `(size[0], size[1], ...)`, centre-cropped, bottom/right
    padded with `fill` (black for normalised images, the ignore label for masks)."""
    height, width = size
    out = np.empty((height, width, *image.shape[2:]), image.dtype)
    out[...] = fill
    top = max((image.shape[0] - height) // 2, 0)
    left = max((image.shape[1] - width) // 2, 0)
    crop = image[top: top + height, left: left + width]
    out[: crop.shape[0], : crop.shape[1]] = crop
    return out


def val_pairs(data, size, limit):
    """Up to `limit` normalised val images `(N, H, W, 3)` at `size` and their
    labels `(N, H, W)` (padding labelled `IGNORE_LABEL`)."""
    images, labels = [], []
    for image, mask in itertools.islice(load_examples(data, "val").as_numpy_iterator(), limit):
        images.append(_center_crop_or_pad(np.asarray(normalize(image), np.float32), size))
        labels.append(_center_crop_or_pad(np.asarray(mask), size, IGNORE_LABEL))
    return np.stack(images), np.stack(labels)


def val_images(data, size, limit):
    """Up to `limit` normalised val images at `size`."""
    return val_pairs(data, size, limit)[0]


def calibration_crops(data, size, count):
    """`count` augmented, normalised train crops of `size` for int8 calibration."""
    data = dataclasses.replace(data, crop_size=tuple(size), batch_size=1)
    return [b[0][0] for b in build_train_dataset(data).take(count).as_numpy_iterator()]


def calibration_set(data, calibration_data, size, count):
    """Calibration images at `size`: from the folder `calibration_data` when
    given, else augmented train crops of `data`."""
    if calibration_data:
        return quantize.folder_images(calibration_data, size, count)
    return calibration_crops(data, size, count)


def agreement(logits, reference):
    """How an export's logits compare with Keras float32's on the same images."""
    return {"argmax_agreement": float(np.mean(logits.argmax(-1) == reference.argmax(-1))),
            "max_abs_logit_diff": float(np.max(np.abs(logits - reference)))}


def export_all(model, data, export_dir, name, version, formats, tflite_modes=export.TFLITE_MODES,
               tflite_size=None, calibration_images=None, include_probabilities=False,
               overwrite=False, report_images=16, class_names=None, precision="float32",
               calibration_data=None, calibration_size=None, int8_scheme="ignore_matmul",
               max_miou_drop=None):
    """Exports `formats`; returns a dict of paths, sizes (bytes) and agreement.

    The exports share one BN-folded inference graph; the agreement is measured
    against `model` itself on val images of `data`. With `data=None` (a
    model without a run config) nothing that needs data runs: the report
    says so in one line, TFLite needs `tflite_size`, and int8 (TFLite's
    `int8` mode, `openvino_int8`) needs `calibration_data`, a folder of
    images. `labels.txt` gets the class names (one per line, class id =
    line number - 1), for serving clients and apps.

    Calibration takes `calibration_images` images (default: 32 for TFLite,
    `quantize.DEFAULT_CALIBRATION_IMAGES` for OpenVINO) at the export's size
    (the run's crop size; `tflite_size` for TFLite; `calibration_size` or
    512x512 for OpenVINO without a run config). `int8_scheme` and
    `max_miou_drop` are `quantize.quantize_openvino`'s.
    """
    unknown = sorted(set(formats) - set(layout.GRAPH_FORMATS))
    if unknown:
        raise ValueError(f"unknown export formats {unknown}: expected some of "
                         f"{', '.join(layout.GRAPH_FORMATS)}")
    if "openvino_int8" in formats:
        _check_int8_request(data, calibration_data, max_miou_drop, int8_scheme)
    net = export.inference_graph(model)
    num_classes = int(net.output.shape[-1])
    report = _labels_report(data, export_dir, name, class_names, num_classes)

    def reference(size):
        """Val images at `size`, their labels and Keras float32's logits (`None`s without data)."""
        if data is None:
            return None, None, None
        images, labels = val_pairs(data, size, report_images)
        return images, labels, np.asarray(model.inference_model()(images, training=False))

    def calibration(size, default):
        count = default if calibration_images is None else calibration_images
        return calibration_set(data, calibration_data, size, count)

    if "saved_model" in formats:
        # bfloat16 (SavedModel only): folded from the model at that precision.
        source = net if precision == "float32" else model
        path = export.export_saved_model(source, export_dir, name, version, include_probabilities,
                                         overwrite, precision)
        report["saved_model"] = {"path": path}
    if "tflite" in formats:
        report.update(_export_tflite(net, data, export_dir, name, version, tflite_modes,
                                     tflite_size, calibration, overwrite, reference,
                                     bool(calibration_data)))
    if "openvino" in formats or "openvino_int8" in formats:
        size = tuple(data.crop_size if data else calibration_size or (512, 512))
        int8 = None
        if "openvino_int8" in formats:
            int8 = {"scheme": int8_scheme, "max_miou_drop": max_miou_drop,
                    "calibration": lambda: calibration(size, quantize.DEFAULT_CALIBRATION_IMAGES)}
        report.update(_export_openvino(net, export_dir, name, version, "openvino" in formats,
                                       int8, overwrite, reference(size), num_classes))
    if "onnx" in formats:
        path = export.export_onnx(net, layout.onnx_path(export_dir, name))
        report["onnx"] = {"path": path, "bytes": os.path.getsize(path)}
    return report


def _check_int8_request(data, calibration_data, max_miou_drop, int8_scheme):
    """Refuses an int8 export that could not finish, before any export."""
    if data is None and not calibration_data:
        raise ValueError(NO_INT8_DATA)
    if max_miou_drop is not None and data is None:
        raise ValueError("--max-miou-drop needs val images with labels: pass --preset or "
                         "--config with the run's data.")
    quantize.quantize_options(int8_scheme)  # an unknown scheme fails here


def _labels_report(data, export_dir, name, class_names, num_classes):
    """Writes `labels.txt`; returns the report's first entries."""
    names = class_names or class_names_for(data.name if data else None, num_classes)
    report = {"labels": {"path": write_text(layout.labels_path(export_dir, name),
                                            "\n".join(names) + "\n")}}
    if data is None:
        report["report"] = {"path": "-", "skipped": "no data config (pass --preset or --config "
                                                    "to compare the exports on val images)"}
    return report


def _ir_bytes(xml):
    return os.path.getsize(xml) + os.path.getsize(os.path.splitext(xml)[0] + ".bin")


def _export_openvino(net, export_dir, name, version, float_report, int8, overwrite, reference,
                     num_classes):
    """`openvino/<version>/`: the float32 IR, and with `int8` (`scheme`,
    `max_miou_drop`, `calibration`: a function giving the images) the int8
    IR beside it, quantized from it; the folder is written whole and renamed
    into place. Reported: the float32 IR at the f32 and bf16 hints (when
    `float_report`) and the int8 IR, against Keras float32 on val images,
    with both mIoUs for int8."""
    directory = layout.openvino_dir(export_dir, name, version)
    xml = os.path.join(directory, f"{name}.xml")
    int8_xml = os.path.join(directory, f"{name}_int8.xml")
    images, labels, keras_logits = reference
    with atomic_path(directory, overwrite) as tmp:
        tmp_xml = export.export_openvino(net, tmp, name, overwrite=True)
        if int8:
            calibration = int8["calibration"]()
            validation = (images, labels) if int8["max_miou_drop"] is not None else None
            quantize.quantize_openvino(tmp_xml, os.path.join(tmp, os.path.basename(int8_xml)),
                                       calibration, int8["scheme"], validation,
                                       int8["max_miou_drop"], num_classes)
    report = {}
    if float_report:
        for precision_hint in ("float32", "bfloat16"):
            entry = {"path": xml, "bytes": _ir_bytes(xml)}
            if images is not None:
                compiled = export.compile_openvino(xml, precision_hint)
                entry.update(agreement(export.run_openvino(compiled, images), keras_logits))
            report[f"openvino_{precision_hint}"] = entry
    if int8:
        from danet_tf.deploy.openvino_runtime import OpenVinoLogits

        entry = {"path": int8_xml, "bytes": _ir_bytes(int8_xml), "scheme": int8["scheme"],
                 "calibration_images": len(calibration)}
        if images is not None:
            logits = OpenVinoLogits(int8_xml)(images)
            entry.update(agreement(logits, keras_logits))
            entry["miou"] = quantize.miou(quantize.confusion(logits, labels, num_classes))
            entry["keras_float32_miou"] = quantize.miou(
                quantize.confusion(keras_logits, labels, num_classes))
            entry["val_images"] = len(images)
        report["openvino_int8"] = entry
    return report


def _export_tflite(net, data, export_dir, name, version, modes, size, calibration, overwrite,
                   reference, has_calibration_data):
    """TFLite files in `tflite/<version>/` (refused when they exist unless
    `overwrite`), each compared with Keras on val images; `calibration(size,
    default count)` gives int8's representative images."""
    if size is None and data is None:
        raise ValueError("tflite: give --tflite-size H W (no run config to take the crop "
                         "size from).")
    size = tuple(size or data.crop_size)
    if "int8" in modes and data is None and not has_calibration_data:
        raise ValueError("tflite int8 needs calibration images: pass --calibration-data DIR, or "
                         "--preset / --config with the training data, or leave int8 out of "
                         "--tflite-modes.")
    representative = (calibration(size, TFLITE_CALIBRATION_IMAGES)
                      if "int8" in modes else None)
    paths = export.export_tflite(net, layout.tflite_dir(export_dir, name, version), name, size,
                                 modes, representative, overwrite)
    images, _, keras_logits = reference(size)
    report = {}
    for mode, path in paths.items():
        report[f"tflite_{mode}"] = {"path": path, "bytes": os.path.getsize(path)}
        if images is not None:
            report[f"tflite_{mode}"].update(agreement(export.run_tflite(path, images),
                                                      keras_logits))
    return report
