"""What `danet-batch-predict` writes: per-image PNGs and JSON records, the
dead-letter lines of `failed.jsonl` and the collection's `metrics.json`.

Local files are written atomically (`danet_tf.files`: a temporary file
renamed into place); other file systems through Beam's `FileSystems`, whose
objects (e.g. on GCS) appear whole when closed.
"""

import io
import json
import os

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from PIL import Image

from danet_tf.data.images import BadExampleError
from danet_tf.deploy.loading import class_names_and_palette


class Unusable(BadExampleError):
    """An input the pipeline cannot segment (its message names the file)."""


def one_sentence(error):
    """The error's message on one line (as the commands print errors)."""
    from danet_tf.errors import one_line

    return one_line(error) if str(error).strip() else type(error).__name__


def failure_line(path_and_error):
    """The `failed.jsonl` line of an unusable input (and counts it)."""
    path, error = path_and_error
    Metrics.counter("danet", "failed").inc()
    return json.dumps({"path": path, "error": f"{type(error).__name__}: {one_sentence(error)}"})


def is_local(path):
    return FileSystems.get_scheme(path) in (None, "file")


def write_file(path, data):
    """Writes `data` (bytes) to `path` whole or not at all."""
    if is_local(path):
        from danet_tf.files import write_bytes

        write_bytes(path, data)
        return
    with FileSystems.create(path) as f:
        f.write(data)


def png_bytes(classes, palette):
    """A class map as PNG bytes: palette indices (mode P, the dataset's
    colours) for up to 256 classes, else 16-bit class ids."""
    if palette is None or len(palette) > 256:
        image = Image.fromarray(classes.astype(np.uint16))
    else:
        image = Image.fromarray(classes.astype(np.uint8))
        image.putpalette(np.asarray(palette, np.uint8).ravel().tolist())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_png(path, classes, palette):
    write_file(path, png_bytes(classes, palette))


def model_format(model_path):
    if model_path.endswith(".xml"):
        return "openvino"
    return "keras" if model_path.endswith(".keras") else "saved_model"


def image_record(path, png, segmentation, names, mask, model_path):
    """The JSON record of one segmented image: its size, the share of its
    pixels in each predicted class, the model; with a mask, its confusion
    matrix (rows = truth, columns = prediction; the evaluation's counts)."""
    classes = segmentation.classes
    counts = np.bincount(classes.ravel(), minlength=segmentation.num_classes)
    record = {
        "path": path,
        "output": png,
        "height": int(classes.shape[0]),
        "width": int(classes.shape[1]),
        "class_shares": {names[c]: round(float(counts[c]) / classes.size, 6)
                         for c in np.flatnonzero(counts)},
        "model": model_path,
        "format": model_format(model_path),
    }
    if mask is not None:
        from danet_tf.models.metrics import confusion_matrix

        confusion = confusion_matrix(mask, classes, segmentation.num_classes)
        record["confusion"] = np.asarray(confusion, np.float64).astype(np.int64).tolist()
    return record


class SumConfusion(beam.CombineFn):
    """Sums per-image confusion matrices: `(int64 matrix or None, image count)`."""

    def create_accumulator(self):
        return None, 0

    def add_input(self, accumulator, matrix):
        total, count = accumulator
        matrix = np.asarray(matrix, np.int64)
        return (matrix if total is None else total + matrix), count + 1

    def merge_accumulators(self, accumulators):
        total, count = None, 0
        for matrix, images in accumulators:
            if matrix is not None:
                total = matrix if total is None else total + matrix
            count += images
        return total, count

    def extract_output(self, accumulator):
        return accumulator


def metrics_of(confusion, names):
    """mIoU, pixel accuracy and per-class IoU (by name) of a confusion matrix,
    by the functions `danet-evaluate` uses."""
    from danet_tf.models.metrics import score_record, segmentation_scores

    return score_record(segmentation_scores(np.asarray(confusion, np.float64)), names)


def write_metrics(total_and_count, job):
    """Writes `metrics.json` of the summed confusion matrix (nothing when no
    image had a mask)."""
    confusion, count = total_and_count
    if confusion is None:
        return
    names, _ = class_names_and_palette(job.model, job.dataset, len(confusion))
    result = {"model": job.model, "images": count, **metrics_of(confusion, names),
              "confusion": confusion.tolist()}
    write_file(FileSystems.join(job.output, "metrics.json"),
               json.dumps(result, indent=2).encode())


def read_metrics(output_dir):
    """The `metrics.json` of a finished run, or None."""
    path = FileSystems.join(output_dir, "metrics.json")
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path) as f:
        return json.loads(f.read())


def local_or_remote_dir(path):
    """Creates a local output directory (object stores need none)."""
    if is_local(path):
        os.makedirs(path, exist_ok=True)
