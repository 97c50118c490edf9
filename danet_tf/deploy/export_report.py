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


@dataclasses.dataclass(frozen=True)
class ExportRequest:
    """What `export_all` writes, and how.

    Args:
        export_dir, name, version: the model folder `<export_dir>/<name>/`
            and the version the formats go to (`layout`).
        formats: some of `layout.GRAPH_FORMATS`.
        data: the run's `DataConfig` (calibration crops, the val report,
            class names), or `None`: nothing that needs data runs, the
            report says so, TFLite needs `tflite_size` and int8 (TFLite's
            `int8` mode, `openvino_int8`) needs `calibration_data`.
        class_names: for `labels.txt` (default: the dataset's).
        overwrite: replace the files of an existing version.
        include_probabilities: the SavedModel serves probabilities too.
        precision: the SavedModel's compute precision.
        tflite_modes, tflite_size: the LiteRT models and their fixed size
            (default: the run's crop size).
        calibration_images: int8 calibration images (default: 32 for
            TFLite, `quantize.DEFAULT_CALIBRATION_IMAGES` for OpenVINO).
        calibration_data: a folder of images to calibrate on instead of
            augmented train crops.
        calibration_size: OpenVINO's calibration size without `data`
            (default 512x512; with `data`: its crop size).
        int8_scheme, max_miou_drop: `quantize.quantize_openvino`'s.
        report_images: val images the exports are compared on.
    """

    export_dir: str
    name: str
    version: int
    formats: tuple
    data: object | None = None
    class_names: tuple | None = None
    overwrite: bool = False
    include_probabilities: bool = False
    precision: str = "float32"
    tflite_modes: tuple = export.TFLITE_MODES
    tflite_size: tuple | None = None
    calibration_images: int | None = None
    calibration_data: str | None = None
    calibration_size: tuple | None = None
    int8_scheme: str = quantize.DEFAULT_SCHEME
    max_miou_drop: float | None = None
    report_images: int = 16

    def check(self):
        """Refuses a request that could not finish, before anything is written."""
        unknown = sorted(set(self.formats) - set(layout.GRAPH_FORMATS))
        if unknown:
            raise ValueError(f"unknown export formats {unknown}: expected some of "
                             f"{', '.join(layout.GRAPH_FORMATS)}")
        if "openvino_int8" in self.formats:
            _check_int8_request(self.data, self.calibration_data, self.max_miou_drop,
                                self.int8_scheme)

    def calibration(self, size, default):
        """Calibration images at `size`: `calibration_images` of them, else `default`."""
        count = default if self.calibration_images is None else self.calibration_images
        return calibration_set(self.data, self.calibration_data, size, count)


def export_all(model, request):
    """Exports `request.formats` of `model` (`ExportRequest`); returns a dict
    of paths, sizes (bytes) and agreement.

    The exports share one BN-folded inference graph; the agreement is
    measured against `model` itself on val images of `request.data`.
    `labels.txt` gets the class names (one per line, class id = line number
    - 1), for serving clients and apps.
    """
    request.check()
    net = export.inference_graph(model)
    num_classes = int(net.output.shape[-1])
    report = _labels_report(request, num_classes)
    reference = _reference(model, request)
    if "saved_model" in request.formats:
        report["saved_model"] = {"path": _export_saved_model(model, net, request)}
    if "tflite" in request.formats:
        report.update(_export_tflite(net, request, reference))
    if "openvino" in request.formats or "openvino_int8" in request.formats:
        report.update(_export_openvino(net, request, reference, num_classes))
    if "onnx" in request.formats:
        path = export.export_onnx(net, layout.onnx_path(request.export_dir, request.name))
        report["onnx"] = {"path": path, "bytes": os.path.getsize(path)}
    return report


def _reference(model, request):
    """`size -> (val images, labels, Keras float32 logits)` (`None`s without data)."""

    def reference(size):
        if request.data is None:
            return None, None, None
        images, labels = val_pairs(request.data, size, request.report_images)
        return images, labels, np.asarray(model.inference_model()(images, training=False))

    return reference


def _export_saved_model(model, net, request):
    """The SavedModel version; bfloat16 is folded from the model at that precision."""
    source = net if request.precision == "float32" else model
    return export.export_saved_model(source, request.export_dir, request.name, request.version,
                                     request.include_probabilities, request.overwrite,
                                     request.precision)


def _check_int8_request(data, calibration_data, max_miou_drop, int8_scheme):
    """Refuses an int8 export that could not finish, before any export."""
    if data is None and not calibration_data:
        raise ValueError(NO_INT8_DATA)
    if max_miou_drop is not None and data is None:
        raise ValueError("--max-miou-drop needs val images with labels: pass --preset or "
                         "--config with the run's data.")
    quantize.quantize_options(int8_scheme)  # an unknown scheme fails here


def _labels_report(request, num_classes):
    """Writes `labels.txt`; returns the report's first entries."""
    data = request.data
    names = request.class_names or class_names_for(data.name if data else None, num_classes)
    path = layout.labels_path(request.export_dir, request.name)
    report = {"labels": {"path": write_text(path, "\n".join(names) + "\n")}}
    if data is None:
        report["report"] = {"path": "-", "skipped": "no data config (pass --preset or --config "
                                                    "to compare the exports on val images)"}
    return report


def _ir_bytes(xml):
    return os.path.getsize(xml) + os.path.getsize(os.path.splitext(xml)[0] + ".bin")


def _export_openvino(net, request, reference, num_classes):
    """`openvino/<version>/`: the float32 IR (`openvino`), and with
    `openvino_int8` the int8 IR beside it, quantized from it; the folder is
    written whole and renamed into place. Reported: the float32 IR at the
    f32 and bf16 hints and the int8 IR, against Keras float32 on val images,
    with both mIoUs for int8."""
    directory = layout.openvino_dir(request.export_dir, request.name, request.version)
    xml = os.path.join(directory, f"{request.name}.xml")
    int8_xml = os.path.join(directory, f"{request.name}_int8.xml")
    data = request.data
    size = tuple(data.crop_size if data else request.calibration_size or (512, 512))
    images, labels, keras_logits = reference(size)
    int8 = "openvino_int8" in request.formats
    with atomic_path(directory, request.overwrite) as tmp:
        tmp_xml = export.export_openvino(net, tmp, request.name, overwrite=True)
        if int8:
            calibration = request.calibration(size, quantize.DEFAULT_CALIBRATION_IMAGES)
            drop = request.max_miou_drop
            quantize.quantize_openvino(tmp_xml, os.path.join(tmp, os.path.basename(int8_xml)),
                                       calibration, request.int8_scheme,
                                       (images, labels) if drop is not None else None, drop,
                                       num_classes)
    report = {}
    if "openvino" in request.formats:
        for precision_hint in ("float32", "bfloat16"):
            entry = {"path": xml, "bytes": _ir_bytes(xml)}
            if images is not None:
                compiled = export.compile_openvino(xml, precision_hint)
                entry.update(agreement(export.run_openvino(compiled, images), keras_logits))
            report[f"openvino_{precision_hint}"] = entry
    if int8:
        report["openvino_int8"] = _int8_entry(int8_xml, request, len(calibration),
                                              (images, labels, keras_logits), num_classes)
    return report


def _int8_entry(int8_xml, request, calibration_count, reference, num_classes):
    """The int8 IR's report: size, scheme, calibration, and on val images its
    agreement with Keras float32 and both mIoUs."""
    from danet_tf.deploy.openvino_runtime import OpenVinoLogits

    images, labels, keras_logits = reference
    entry = {"path": int8_xml, "bytes": _ir_bytes(int8_xml), "scheme": request.int8_scheme,
             "calibration_images": calibration_count}
    if images is not None:
        logits = OpenVinoLogits(int8_xml)(images)
        entry.update(agreement(logits, keras_logits))
        entry["miou"] = quantize.miou(quantize.confusion(logits, labels, num_classes))
        entry["keras_float32_miou"] = quantize.miou(
            quantize.confusion(keras_logits, labels, num_classes))
        entry["val_images"] = len(images)
    return entry


def _export_tflite(net, request, reference):
    """TFLite files in `tflite/<version>/` (refused when they exist unless
    `overwrite`), each compared with Keras on val images."""
    data, modes = request.data, request.tflite_modes
    if request.tflite_size is None and data is None:
        raise ValueError("tflite: give --tflite-size H W (no run config to take the crop "
                         "size from).")
    size = tuple(request.tflite_size or data.crop_size)
    if "int8" in modes and data is None and not request.calibration_data:
        raise ValueError("tflite int8 needs calibration images: pass --calibration-data DIR, or "
                         "--preset / --config with the training data, or leave int8 out of "
                         "--tflite-modes.")
    representative = (request.calibration(size, TFLITE_CALIBRATION_IMAGES)
                      if "int8" in modes else None)
    directory = layout.tflite_dir(request.export_dir, request.name, request.version)
    paths = export.export_tflite(net, directory, request.name, size, modes, representative,
                                 request.overwrite)
    images, _, keras_logits = reference(size)
    report = {}
    for mode, path in paths.items():
        report[f"tflite_{mode}"] = {"path": path, "bytes": os.path.getsize(path)}
        if images is not None:
            report[f"tflite_{mode}"].update(agreement(export.run_tflite(path, images),
                                                      keras_logits))
    return report
