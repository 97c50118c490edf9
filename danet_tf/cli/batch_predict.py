"""Segment a whole collection with Apache Beam: a class-map PNG and a JSON line per image.

    python training/batch_predict.py --input 'photos/*.jpg' --output preds/ \
        --model saved_models/danet_quickstart/danet_quickstart.keras \
        [--masks 'labels/*.png'] [--crop 512 --scales 0.75 1.0 1.25 --flip] \
        [--precision auto] [--overwrite] [Beam options, e.g. --runner DataflowRunner ...]

--model takes a .keras file, a SavedModel version directory or an OpenVINO .xml.
Without --runner the pipeline runs here, offline, on --workers processes
(default: one per core). With --masks (paired by file stem) it also writes
metrics.json: mIoU, pixel accuracy and per-class IoU as danet-evaluate
computes them. Bad inputs are listed in failed.jsonl; a rerun into the same
--output skips the images already done (--overwrite redoes them).
"""

import argparse
import os
import sys
import time

from danet_tf.cli import command
from danet_tf.cli.options import add_inference_args


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--input", required=True, help="glob of the images (local or gs://)")
    parser.add_argument("--output", required=True, help="output folder (local or gs://)")
    parser.add_argument("--masks", help="glob of ground-truth masks, paired by file stem")
    parser.add_argument("--dataset", help="palette and class names: cityscapes, pascal_voc, "
                        "synthetic, ... (default: the run's config next to the model)")
    parser.add_argument("--overwrite", action="store_true",
                        help="segment images whose outputs exist again")
    parser.add_argument("--max-batch-images", type=int, default=8,
                        help="most images per RunInference batch (default 8)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(),
                        help="local worker processes when no --runner is given "
                             "(default: one per core)")
    parser.add_argument("--threads", type=int,
                        help="model threads per worker (default: cores / local workers; "
                             "all cores on a remote runner)")
    add_inference_args(parser)
    return parser.parse_known_args(argv)


def make_job(args):
    from danet_tf.deploy.batch_pipeline import BatchJob

    handler = dict(precision=args.precision, crop_size=args.crop, stride_rate=args.stride_rate,
                   scales=tuple(args.scales), flip=args.flip, base_size=args.base_size,
                   batch_size=args.batch_size, max_batch_images=args.max_batch_images,
                   threads=args.threads)
    from danet_tf.deploy.loading import resolve_model

    return BatchJob(args.input, args.output, resolve_model(args.model), masks=args.masks,
                    overwrite=args.overwrite, dataset=args.dataset, handler=handler)


def local_runner(options, args):
    """Beam's FnApiRunner on `args.workers` local processes (no download,
    unlike the DirectRunner, which hands pipelines to Prism since Beam 2.68).
    Each worker gets an equal share of the cores unless --threads says."""
    from apache_beam.options.pipeline_options import DirectOptions, WorkerOptions
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    workers = max(args.workers, 1)
    harness = options.view_as(WorkerOptions)
    harness.default_sdk_harness_log_level = harness.default_sdk_harness_log_level or "WARNING"
    direct = options.view_as(DirectOptions)
    direct.direct_num_workers = workers
    direct.direct_running_mode = "multi_processing" if workers > 1 else "in_memory"
    if args.threads is None:
        args.threads = max((os.cpu_count() or 1) // workers, 1)
    return FnApiRunner()


def check_inputs(args):
    """One-line errors for a glob that matches nothing (before any worker starts)."""
    from apache_beam.io.filesystems import FileSystems

    for flag, pattern in (("--input", args.input), ("--masks", args.masks)):
        if pattern and not FileSystems.match([pattern], [1])[0].metadata_list:
            raise FileNotFoundError(f"{flag} {pattern!r} matches no file.")


def run(argv=None):
    """Builds and runs the pipeline; returns `(counters, metrics or None)`."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

    from danet_tf.deploy.batch_outputs import local_or_remote_dir, read_metrics
    from danet_tf.deploy.batch_pipeline import add_segmentation, counter_values

    args, beam_args = parse_args(argv)
    check_inputs(args)
    options = PipelineOptions(beam_args)
    runner = None
    if options.view_as(StandardOptions).runner is None:
        runner = local_runner(options, args)
    local_or_remote_dir(args.output)
    job = make_job(args)
    start = time.monotonic()
    pipeline = beam.Pipeline(runner=runner, options=options)
    add_segmentation(pipeline, job)
    result = pipeline.run()
    result.wait_until_finish()
    counters = counter_values(result)
    seconds = time.monotonic() - start
    print(", ".join(f"{name} {value}" for name, value in counters.items())
          + f" in {seconds:.1f} s ({counters['segmented'] / seconds:.2f} images/s); "
          f"outputs in {args.output}", file=sys.stderr)
    metrics = read_metrics(args.output) if args.masks else None
    return counters, metrics


@command
def main(argv=None):
    from danet_tf.models.metrics import format_scores_table

    counters, metrics = run(argv)
    if metrics:
        per_class = metrics["per_class_iou"]
        scores = {"miou": metrics["miou"], "pixel_accuracy": metrics["pixel_accuracy"],
                  "per_class_iou": [float("nan") if v is None else v for v in per_class.values()]}
        print(f"{metrics['images']} images with masks")
        print(format_scores_table(scores, list(per_class)))
    return counters, metrics


if __name__ == "__main__":
    main()
