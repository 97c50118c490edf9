"""The Beam pipeline of `danet-batch-predict`: segment a whole collection.

    images (glob) -> one path per file stem -> skip finished -> read (+ mask)
        -> RunInference(DANetModelHandler) -> class-map PNG + JSON line per image
        [-> confusion matrices summed with CombineGlobally -> metrics.json]

Files are matched and read through Beam's `FileSystems` (local paths, and
`gs://` with `apache-beam[gcp]`) and decoded by the project's one image rule
(`danet_tf.data.images`). Outputs go to `output_dir`, named by file stem:
`<stem>.png` (class ids, with the dataset's palette), `<stem>.json` (one
line), and for the whole run `predictions.jsonl`, `failed.jsonl` (one line
per bad input: its path and the error) and, with masks, `metrics.json`.
A file that cannot be used goes to `failed.jsonl` and the others complete.
An image whose `<stem>.json` exists (with its confusion matrix when masks
are given) is skipped unless `overwrite`: its record is read back into
`predictions.jsonl` and the metrics, so a killed run resumes where it stopped.
"""

import dataclasses
import json
import posixpath
import sys
import time

import apache_beam as beam
import numpy as np
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import RunInference

from danet_tf.data.folder import check_mask_values
from danet_tf.deploy.batch_outputs import (
    SumConfusion,
    Unusable,
    class_names_and_palette,
    failure_line,
    image_record,
    write_file,
    write_metrics,
    write_png,
)
from danet_tf.deploy.beam import keyed_handler

NAMESPACE = "danet"
COUNTERS = ("matched", "segmented", "skipped", "failed")


@dataclasses.dataclass
class BatchJob:
    """What to segment and how (the `danet-batch-predict` arguments).

    `handler` holds the `DANetModelHandler` keyword arguments (precision,
    crop_size, scales, flip, ...); `dataset` picks the palette and class
    names (default: the run's config next to the model).
    """

    input: str
    output: str
    model: str
    masks: str | None = None
    overwrite: bool = False
    dataset: str | None = None
    handler: dict = dataclasses.field(default_factory=dict)
    progress_every_s: float = 30.0


def file_stem(path):
    return posixpath.splitext(posixpath.basename(path))[0]


def counter(name):
    return Metrics.counter(NAMESPACE, name)


def outputs_of(output_dir, path):
    """`(png, json)` output paths of an input image."""
    stem = file_stem(path)
    return (FileSystems.join(output_dir, f"{stem}.png"),
            FileSystems.join(output_dir, f"{stem}.json"))


def read_bytes(path):
    with FileSystems.open(path) as f:
        return f.read()


class OnePathPerStem(beam.DoFn):
    """Outputs are named by file stem: of the files sharing one, the first
    (sorted) is segmented and the others fail."""

    def process(self, stem_and_paths):
        _, paths = stem_and_paths
        paths = sorted(paths)
        counter("matched").inc(len(paths))
        yield paths[0]
        for path in paths[1:]:
            yield beam.pvalue.TaggedOutput("failed", (path, Unusable(
                f"{path!r} has the file stem of {paths[0]!r}; outputs are named by stem.")))


class SkipFinished(beam.DoFn):
    """Passes on the paths still to segment; the records of finished ones go
    to the `done` output."""

    def __init__(self, job):
        self.job = job

    def process(self, path):
        _, record_path = outputs_of(self.job.output, path)
        if not self.job.overwrite and FileSystems.exists(record_path):
            record = json.loads(read_bytes(record_path))
            if not self.job.masks or "confusion" in record:
                counter("skipped").inc()
                yield beam.pvalue.TaggedOutput("done", record)
                return
        yield path


class ReadExample(beam.DoFn):
    """`path -> (path, image)`, or `(path, (image, mask ids))` with masks
    (paired by file stem, checked: single-channel and the image's size;
    mask values are checked once the model's class count is known)."""

    def process(self, path, masks=None):
        from danet_tf.data.folder import check_same_size, mask_ids
        from danet_tf.data.images import decode_image, decode_rgb

        try:
            image = decode_rgb(read_bytes(path), path)
            if masks is None:
                yield path, image
                return
            mask_path = masks.get(file_stem(path))
            if mask_path is None:
                raise Unusable(f"No mask with the file stem of image {path!r}.")
            mask = mask_ids(decode_image(read_bytes(mask_path), mask_path, "Mask"), mask_path)
            check_same_size(image, mask, path, mask_path)
            yield path, (image, (mask_path, mask))
        except Exception as error:  # noqa: BLE001 (any unusable file goes to failed.jsonl)
            yield beam.pvalue.TaggedOutput("failed", (path, error))


class WriteOutputs(beam.DoFn):
    """Writes each image's class-map PNG and JSON line (atomically, the JSON
    last: it marks the image finished) and yields the record. Prints the
    progress of this worker every `progress_every_s` seconds."""

    def __init__(self, job):
        self.job = job

    def setup(self):
        self.palettes = {}
        self.started = self.last_report = time.monotonic()
        self.done = 0

    def process(self, keyed_result):
        path, result = keyed_result
        segmentation = result.inference
        try:
            mask = None
            if isinstance(result.example, tuple):
                mask_path, mask = result.example[1]
                check_mask_values(mask, mask_path, segmentation.num_classes)
            names, palette = self.names_and_palette(segmentation.num_classes)
            png, record_path = outputs_of(self.job.output, path)
            record = image_record(path, png, segmentation, names, mask, self.job.model)
            write_png(png, segmentation.classes, palette)
            write_file(record_path, (json.dumps(record) + "\n").encode())
        except Exception as error:  # noqa: BLE001
            yield beam.pvalue.TaggedOutput("failed", (path, error))
            return
        counter("segmented").inc()
        self.report_progress()
        yield record

    def names_and_palette(self, num_classes):
        if num_classes not in self.palettes:
            self.palettes[num_classes] = class_names_and_palette(
                self.job.model, self.job.dataset, num_classes)
        return self.palettes[num_classes]

    def report_progress(self):
        self.done += 1
        now = time.monotonic()
        if now - self.last_report >= self.job.progress_every_s:
            self.last_report = now
            print(f"danet-batch-predict: {self.done} images segmented by this worker, "
                  f"{self.done / (now - self.started):.2f} images/s", file=sys.stderr, flush=True)


def failed_batches(batch_and_error):
    """One `(path, error)` per element of a batch whose inference raised."""
    batch, error = batch_and_error
    return [(path, error) for path, _ in batch]


def single_file(output_dir, name):
    """`WriteToText` arguments for one whole file `output_dir/name.jsonl`."""
    return dict(file_path_prefix=FileSystems.join(output_dir, name), file_name_suffix=".jsonl",
                shard_name_template="", num_shards=1)


def add_segmentation(pipeline, job):
    """Adds the whole job to `pipeline`; returns the PCollection of records."""
    paths = (pipeline
             | "Match images" >> fileio.MatchFiles(job.input)
             | "Paths" >> beam.Map(lambda metadata: (file_stem(metadata.path), metadata.path))
             | "Group by stem" >> beam.GroupByKey()
             | "One path per stem" >> beam.ParDo(OnePathPerStem()).with_outputs(
                 "failed", main="paths"))
    todo = paths.paths | "Skip finished" >> beam.ParDo(SkipFinished(job)).with_outputs(
        "done", main="todo")
    masks = None
    if job.masks:
        masks = beam.pvalue.AsDict(
            pipeline
            | "Match masks" >> fileio.MatchFiles(job.masks)
            | "Masks by stem" >> beam.Map(lambda metadata: (file_stem(metadata.path),
                                                            metadata.path)))
    examples = todo.todo | "Read" >> beam.ParDo(ReadExample(), masks=masks).with_outputs(
        "failed", main="examples")
    predictions, inference_errors = (
        examples.examples
        | "Segment" >> RunInference(keyed_handler(job.model, **job.handler))
        .with_exception_handling())
    written = predictions | "Write" >> beam.ParDo(WriteOutputs(job)).with_outputs(
        "failed", main="records")
    failed = (
        (paths.failed, examples.failed, written.failed,
         inference_errors.failed_inferences | "Batch errors" >> beam.FlatMap(failed_batches))
        | "All failures" >> beam.Flatten()
        | "Failure lines" >> beam.Map(failure_line))
    failed | "failed.jsonl" >> beam.io.WriteToText(**single_file(job.output, "failed"))
    records = (written.records, todo.done) | "All records" >> beam.Flatten()
    (records | "Record lines" >> beam.Map(json.dumps)
     | "predictions.jsonl" >> beam.io.WriteToText(**single_file(job.output, "predictions")))
    if job.masks:
        (records
         | "Confusion matrices" >> beam.Map(lambda record: np.asarray(record["confusion"]))
         | "Sum" >> beam.CombineGlobally(SumConfusion())
         | "metrics.json" >> beam.Map(write_metrics, job))
    return records


def counter_values(result):
    """`{counter: value}` of a finished run's `COUNTERS` (0 when never incremented)."""
    from apache_beam.metrics.metric import MetricsFilter

    values = dict.fromkeys(COUNTERS, 0)
    query = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
    for metric in query["counters"]:
        if metric.key.metric.name in values:
            values[metric.key.metric.name] += metric.committed or 0
    return values
