"""DANet's ablation (paper Table 1) in miniature: FCN, PSP, ASPP, +PAM, +CAM and
DANet on one dilated backbone, on a task that needs long-range context.

    python benchmarks/ablation.py [--quick] [--workdir DIR] [--heads fcn danet ...]

Every head (`model.head`) trains with the same budget on ResNet-18 at output
stride 8 from scratch (no download):
- the long-range task (`data.synthetic_task=context`: "twin" and "lone"
  objects look the same up close; only the far half of the image tells them
  apart), `SEEDS` seeds;
- the local-texture task (the quick start's scenes), one seed: the control,
  where attention should not hurt.
Each run trains in its own process and is cached as JSON under
`DIR/results` (rerunning the command skips what is done; delete a file to
rerun it). Scores are the final model's, on the task's held-out val scenes
(one evaluation at the end: no best-epoch selection on val). Parameters,
GFLOPs (TensorFlow's graph profiler, multiply-add = 2) and the batch-1
forward latency are measured at 512x512 per head, in a process of its own.
`--quick` shrinks data and steps to a smoke run of the plumbing (minutes; its
numbers mean nothing).
"""

import argparse
import json
import os
import subprocess
import sys
import time

if __package__ in (None, ""):  # run as a script: make the `benchmarks` package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from benchmarks.timing import median_time
from danet_tf.models.head import HEADS

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = (0, 1, 2)
# Per task: the preset, and what the control changes of the context preset
# (the same image size and budget, the quick start's six texture classes).
TASKS = {
    "context": ("context", []),
    "textures": ("context", ["data.synthetic_task=textures", "data.name=synthetic",
                             "data.num_classes=6"]),
}
QUICK = ["data.synthetic_train_size=32", "data.synthetic_val_size=8", "data.batch_size=4",
         "data.eval_batch_size=4", "train.steps_per_epoch=3", "train.warmup_steps=0",
         "data.synthetic_image_size=[32, 64]", "data.crop_size=[32, 64]"]


def run_config(head, task, seed, workdir, quick):
    """The `ExperimentConfig` of one run: the `context` preset's recipe and
    budget, this head, task and seed."""
    from danet_tf.config import load_config

    name = f"{head}_{task}_seed{seed}"
    preset, changes = TASKS[task]
    overrides = changes + (QUICK if quick else []) + [
        f"model.head={head}", f"data.seed={seed}", f"train.name={name}",
        f"train.model_dir={workdir}/runs/{name}", f"train.export_dir={workdir}/exports",
        "train.export_formats=[keras]"]
    return load_config(preset, overrides=overrides)


def train_one(head, task, seed, workdir, quick):
    """Trains one run; returns its scores, gammas and time."""
    import keras

    from danet_tf.cli.train import run
    from danet_tf.data.pipeline import build_eval_dataset
    from danet_tf.models.metrics import confusion_matrix, segmentation_scores

    config = run_config(head, task, seed, workdir, quick)
    start = time.time()
    _, model = run(config, mode="restart", verbose=0)
    seconds = time.time() - start
    num_classes = config.data.num_classes
    confusion = np.zeros((num_classes, num_classes))
    net = model.inference_model()
    for images, masks in build_eval_dataset(config.data):
        predicted = np.argmax(np.asarray(net(images, training=False)), -1)
        confusion += np.asarray(confusion_matrix(masks, predicted, num_classes))
    scores = segmentation_scores(confusion)
    layer_names = {layer.name for layer in model.get_layer("head").layers}
    gammas = {module: float(keras.ops.convert_to_numpy(
        model.get_layer("head").get_layer(module).gamma)[0])
        for module in ("sa", "sc") if module in layer_names}
    return {"miou": scores["miou"], "pixel_accuracy": scores["pixel_accuracy"],
            "per_class_iou": [None if np.isnan(v) else float(v) for v in scores["per_class_iou"]],
            "gammas": gammas, "train_seconds": seconds,
            "steps": config.train.epochs * config.train.steps_per_epoch}


def measure_head(head, size=512, repeats=5):
    """Parameters, GFLOPs and batch-1 forward latency of `head` at `size`^2."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )
    from tensorflow.python.profiler import model_analyzer, option_builder

    from danet_tf import DANet

    model = DANet(3, backbone="resnet18", head=head)
    net = model.inference_model(fold_batch_norm=True)
    spec = tf.TensorSpec((1, size, size, 3), tf.float32)
    forward = tf.function(lambda x: net(x, training=False))
    frozen = convert_variables_to_constants_v2(forward.get_concrete_function(spec))
    options = option_builder.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    flops = model_analyzer.profile(frozen.graph, options=options).total_float_ops
    x = tf.random.normal((1, size, size, 3), seed=0)
    return {"params": model.count_params(),
            "head_params": model.get_layer("head").count_params(),
            "gflops": flops / 1e9,
            "latency_s": median_time(lambda: forward(x).numpy(), repeats)[0]}


def attention_figure(workdir, out, scale=4):
    """The trained DANet (context task, seed 0) on the first val scene with a
    twin and a lone object on its left: input, truth, prediction and the PAM
    rows of the two objects' centres; returns each row's attention mass on
    the far half's objects."""
    import keras
    from PIL import Image

    from danet_tf.data.synthetic import make_split
    from danet_tf.deploy import visualize
    from danet_tf.models.preprocessing import normalize

    name = "danet_context_seed0"
    model = keras.models.load_model(os.path.join(workdir, "exports", name, f"{name}.keras"))
    config = run_config("danet", "context", 0, workdir, quick=False)
    height, width = config.data.synthetic_image_size
    images, masks = make_split(config.data.synthetic_val_size, 1, height, width, task="context")
    half = width // 2
    index = next(i for i, m in enumerate(masks) if {1, 2} <= set(np.unique(m[:, :half])))
    image, truth = images[index], masks[index]
    pam, _, grid = visualize.attention_maps(model, image)
    prediction = np.asarray(model.inference_model()(normalize(image)[None]))[0].argmax(-1)
    size = (width * scale, height * scale)
    big = np.asarray(Image.fromarray(image).resize(size, Image.NEAREST))
    palette = np.array([[0, 0, 0], [200, 30, 30], [40, 170, 60]], np.uint8)

    def classes(c):
        return np.asarray(Image.fromarray(palette[c]).resize(size, Image.NEAREST))

    rows = np.round(np.linspace(0, height - 1, grid[0])).astype(int)
    cols = np.round(np.linspace(0, width - 1, grid[1])).astype(int)
    far_objects = (truth[np.ix_(rows, cols)] > 0) & (cols >= half)[None, :]
    panels = [big, classes(truth), classes(prediction)]
    titles = [f"val scene {index}", "truth: twin red, lone green", "DANet prediction (seed 0)"]
    masses = {}
    for cls, label in ((1, "twin"), (2, "lone")):
        ys, xs = np.nonzero(truth[:, :half] == cls)
        point = (int(ys.mean()), int(xs.mean()))
        row = pam[visualize.feature_index(point, (height, width), grid)].reshape(grid)
        masses[label] = float(row[far_objects].sum())
        heat = visualize.mark(visualize.heatmap(row, big), (point[0] * scale, point[1] * scale), 8)
        panels.append(visualize.with_colour_bar(heat, float(row.min()), float(row.max())))
        titles.append(f"PAM row, {label} on the left: {masses[label]:.0%} on far-half objects")
    sheet = visualize.figure_sheet(panels, titles, columns=3)
    Image.fromarray(sheet).save(out, optimize=True)
    return masses


def cached(path, command, timeout):
    """Runs `command` (a child writing `path`) unless `path` exists; returns its JSON."""
    if not os.path.isfile(path):
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if proc.returncode or not os.path.isfile(path):
            print(f"FAILED {' '.join(command[2:])}:\n{proc.stderr[-1500:]}", file=sys.stderr)
            return None
    with open(path) as f:
        return json.load(f)


def mean_std(values, scale=100.0, digits=1):
    """`mean ± sample std` of the non-missing values (x `scale`), or `—`."""
    values = [scale * v for v in values if v is not None]
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def table(results, measures, seeds):
    """The paper-style Markdown table."""
    lines = ["| head | params (M): model, head | GFLOPs 512² | forward 512² s "
             f"| long-range mIoU % ({len(seeds)} seeds) | twin IoU % | lone IoU % | γ PAM | γ CAM "
             "| local-texture mIoU % (control) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for head in HEADS:
        runs = [r for r in (results.get((head, "context", s)) for s in seeds) if r]
        control = results.get((head, "textures", seeds[0]))
        measure = measures.get(head) or {}
        params = (f"{measure['params'] / 1e6:.2f}, {measure['head_params'] / 1e6:.2f}"
                  if measure else "—")
        gflops = f"{measure['gflops']:.1f}" if measure else "—"
        latency = f"{measure['latency_s']:.3f}" if measure else "—"
        lines.append(
            f"| {head} | {params} | {gflops} | {latency} "
            f"| {mean_std([r['miou'] for r in runs])}"
            f"{'' if len(runs) == len(seeds) else f' ({len(runs)} of {len(seeds)} seeds)'} | "
            f"{mean_std([r['per_class_iou'][1] for r in runs])} "
            f"| {mean_std([r['per_class_iou'][2] for r in runs])} "
            f"| {mean_std([r['gammas'].get('sa') for r in runs], 1.0, 3)} "
            f"| {mean_std([r['gammas'].get('sc') for r in runs], 1.0, 3)} "
            f"| {mean_std([control['miou']]) if control else '—'} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run of the plumbing")
    parser.add_argument("--workdir", default=os.path.join(HERE, "results", "ablation"))
    parser.add_argument("--heads", nargs="+", default=list(HEADS), choices=HEADS)
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--no-control", action="store_true", help="skip the local-texture runs")
    parser.add_argument("--no-train", action="store_true",
                        help="train nothing: tabulate the cached runs (and measure the heads)")
    parser.add_argument("--figure", metavar="PNG",
                        help="draw the trained DANet's attention (context, seed 0) and stop")
    parser.add_argument("--train", nargs=3, metavar=("HEAD", "TASK", "SEED"),
                        help=argparse.SUPPRESS)  # one run, in a child
    parser.add_argument("--measure", metavar="HEAD", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    workdir = os.path.abspath(args.workdir + ("_quick" if args.quick else ""))
    results_dir = os.path.join(workdir, "results")
    os.makedirs(results_dir, exist_ok=True)
    from danet_tf.files import write_text

    if args.figure:
        print(attention_figure(workdir, args.figure))
        return
    if args.train:
        head, task, seed = args.train
        result = train_one(head, task, int(seed), workdir, args.quick)
        write_text(os.path.join(results_dir, f"{head}_{task}_seed{seed}.json"), json.dumps(result))
        return
    if args.measure:
        result = measure_head(args.measure, size=64 if args.quick else 512,
                              repeats=2 if args.quick else 5)
        write_text(os.path.join(results_dir, f"measure_{args.measure}.json"), json.dumps(result))
        return

    me = [sys.executable, os.path.abspath(__file__), "--workdir", args.workdir] + (
        ["--quick"] if args.quick else [])
    # Seed by seed over every head, the control last: a cut-off run leaves
    # complete rows.
    jobs = [(h, "context", s) for s in args.seeds for h in args.heads]
    if not args.no_control:
        jobs += [(h, "textures", args.seeds[0]) for h in args.heads]
    if args.no_train:  # tabulate what is cached
        jobs = [job for job in jobs if os.path.isfile(
            os.path.join(results_dir, "{}_{}_seed{}.json".format(*job)))]
    results, measures = {}, {}
    for head, task, seed in jobs:
        start = time.time()
        result = cached(os.path.join(results_dir, f"{head}_{task}_seed{seed}.json"),
                        me + ["--train", head, task, str(seed)], timeout=3600)
        if result:
            results[(head, task, seed)] = result
            print(f"{head:6s} {task:9s} seed {seed}: mIoU {100 * result['miou']:.1f} "
                  f"({time.time() - start:.0f} s)", flush=True)
    for head in args.heads:
        measures[head] = cached(os.path.join(results_dir, f"measure_{head}.json"),
                                me + ["--measure", head], timeout=1800)
    if args.quick:
        print("--quick: tiny data and steps, a smoke run of the plumbing; "
              "these numbers mean nothing.\n")
    print(table(results, measures, args.seeds))


if __name__ == "__main__":
    main()
