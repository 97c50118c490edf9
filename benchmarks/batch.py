"""Batch prediction throughput: a plain loop against the Beam pipeline.

    python -m benchmarks.batch --workdir DIR [--images 64 --size 512 --backbone resnet50]

Segments `images` random JPEGs of `size` x `size` (whole images, one scale)
with a randomly initialised DANet saved to `DIR`, four ways, each case in
its own process:

    loop          Segmenter.predict over the images in a Python loop, all cores
    beam-1        danet-batch-predict, one worker (in process), all cores
    beam-1x1      one worker pinned to one core and one thread
    beam-2x1      two worker processes, one thread each

and prints a markdown table of images/s and peak memory per worker (the
largest resident set of a process that ran the model), with the CPU model.
Times include loading the model and starting the workers, as a user sees them.
"""

import argparse
import glob
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CASES = {
    "loop": "Python loop over Segmenter, all cores",
    "beam-1": "Beam pipeline, 1 worker, all cores",
    "beam-1x1": "Beam pipeline, 1 worker pinned to 1 core / 1 thread",
    "beam-2x1": "Beam pipeline, 2 workers, 1 thread each",
}


def peak_mb(who=resource.RUSAGE_SELF):
    return resource.getrusage(who).ru_maxrss / 1024.0


def prepare(workdir, images, size, backbone):
    """Random JPEGs and a saved DANet in `workdir` (kept for later runs)."""
    import numpy as np
    from PIL import Image

    image_dir = os.path.join(workdir, f"images_{images}x{size}")
    if len(glob.glob(os.path.join(image_dir, "*.jpg"))) != images:
        os.makedirs(image_dir, exist_ok=True)
        rng = np.random.default_rng(0)
        for i in range(images):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
                os.path.join(image_dir, f"img{i:05d}.jpg"), quality=95)
    model = os.path.join(workdir, f"danet_{backbone}.keras")
    if not os.path.exists(model):
        from danet_tf import DANet
        from danet_tf.files import atomic_path

        with atomic_path(model) as tmp:
            DANet(19, backbone=backbone).save(tmp)
    return image_dir, model


def run_case(case, image_dir, model, output):
    """Runs one case in this process; returns its numbers."""
    paths = sorted(glob.glob(os.path.join(image_dir, "*.jpg")))
    start = time.perf_counter()
    if case == "loop":
        from danet_tf.data.images import read_rgb
        from danet_tf.deploy.inference import Segmenter
        from danet_tf.deploy.loading import load_logits_fn

        segmenter = Segmenter(load_logits_fn(model)[0])
        for path in paths:
            segmenter.predict(read_rgb(path))
    else:
        from danet_tf.cli import batch_predict

        workers, threads = {"beam-1": (1, None), "beam-1x1": (1, 1), "beam-2x1": (2, 1)}[case]
        if case == "beam-1x1":
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        extra = ["--threads", str(threads)] if threads else []
        counters, _ = batch_predict.run(
            ["--input", os.path.join(image_dir, "*.jpg"), "--output", output, "--model", model,
             "--overwrite", "--workers", str(workers), *extra])
        assert counters["segmented"] == len(paths), counters
    seconds = time.perf_counter() - start
    worker_peak = max(peak_mb(), peak_mb(resource.RUSAGE_CHILDREN))
    return {"case": case, "images": len(paths), "seconds": seconds,
            "images_per_s": len(paths) / seconds, "peak_mb_per_worker": worker_peak}


def run_in_subprocess(case, image_dir, model, output):
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.batch", "--case", case, "--image-dir", image_dir,
         "--model", model, "--output", output],
        capture_output=True, text=True, cwd=ROOT)
    line = next((line for line in proc.stdout.splitlines() if line.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        return {"case": case, "error": proc.stderr[-500:]}
    return json.loads(line[len("RESULT "):])


def cpu_model():
    from benchmarks.runner import describe_machine, machine

    return describe_machine(machine())


def table(results, cpu):
    lines = [cpu, "", "| case | images/s | peak MB per worker |",
             "|---|---|---|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {CASES[r['case']]} | failed: {r['error'][-100:]!r} | |")
        else:
            lines.append(f"| {CASES[r['case']]} | {r['images_per_s']:.3f} | "
                         f"{r['peak_mb_per_worker']:.0f} |")
    return "\n".join(lines)


def run(workdir, images=64, size=512, backbone="resnet50"):
    """Times every case on `images` images of `size` x `size`; returns
    `(results, markdown table)` and prints the table."""
    os.makedirs(workdir, exist_ok=True)
    image_dir, model = prepare(workdir, images, size, backbone)
    results = []
    for case in CASES:
        output = os.path.join(workdir, f"out_{case}")
        results.append(run_in_subprocess(case, image_dir, model, output))
        print(f"{case}: {results[-1]}"[:300], file=sys.stderr, flush=True)
    text = table(results, cpu_model())
    print(text)
    return results, text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--workdir")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--image-dir", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        print("RESULT " + json.dumps(run_case(args.case, args.image_dir, args.model, args.output)))
        return None
    if not args.workdir:
        parser.error("--workdir is required")
    return run(args.workdir, args.images, args.size, args.backbone)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
