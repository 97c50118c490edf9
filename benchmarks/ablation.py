"""DANet's ablation (paper Table 1) in miniature: FCN, PSP, ASPP, +PAM, +CAM and
DANet on one pretrained dilated backbone, on two tasks that need long-range
context and one that does not.

    python -m benchmarks.ablation [--quick] [--workdir DIR] [--heads fcn danet ...]

First a miniature backbone is pretrained once (`benchmarks/ablation_backbone.py`:
ResNet-18 at output stride 8, FCN head, local-texture scenes, until val mIoU
stops improving), the stand-in for ImageNet weights. Every head
(`model.head`) then starts from it and trains with the same budget (the
official recipe: backbone at the base learning rate, head at 10x;
`ablation_config.STEPS` steps of batch 4 on whole 64x128 scenes):
- `context` (twin and lone objects look the same up close; only the far half
  tells them apart) and `marker` (a region's class names the kind of the
  marker object in the far half; marker and region look different):
  `SEEDS` seeds each;
- `textures` (the quick start's scenes), one seed: the control, where
  attention should not hurt.
Each run trains in its own process and is cached as JSON under `DIR/results`
(rerunning the command skips what is done; delete a file to rerun it); the
backbone is cached under `DIR/backbone`. Scores are the final model's, on the
task's held-out val scenes (one evaluation at the end: no best-epoch
selection on val). Parameters, GFLOPs (TensorFlow's graph profiler,
multiply-add = 2) and the batch-1 forward latency are measured at 512x512
per head, in a process of its own. `--quick` shrinks data and steps to a
smoke run of the plumbing (minutes; its numbers mean nothing).
"""

import argparse
import json
import os
import subprocess
import sys
import time

from benchmarks.ablation_config import VARIANTS, run_config, run_name
from benchmarks.ablation_table import CUE_CLASSES, table
from benchmarks.timing import median_time
from danet_tf.models.head import HEADS, POSITION_ATTENTION_HEADS

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = (0, 1, 2)
LONG_RANGE = tuple(CUE_CLASSES)
PROBE_STEPS = 30  # steps whose backbone gradients a probe records


def train_one(head, task, seed, workdir, quick, variant="official"):
    """Trains one run (`variant`: a recipe change of `ablation_config.VARIANTS`);
    returns its score record, gammas, backbone drift and time."""
    from benchmarks.finetune_probe import backbone_drift, make_pam_init
    from danet_tf.cli.train import run
    from danet_tf.data.pipeline import build_eval_dataset
    from danet_tf.models.metrics import SegmentationMetric, score_record

    if variant == "pam_init":
        make_pam_init(workdir, task, seed, quick)
    config = run_config(head, task, seed, workdir, quick, variant)
    start = time.time()
    _, model = run(config, mode="restart", verbose=0)
    seconds = time.time() - start
    metric = SegmentationMetric(config.data.num_classes)
    net = model.inference_model()
    for images, masks in build_eval_dataset(config.data):
        metric.update_state(masks, net(images, training=False))
    return {**score_record(metric.scores()), "gammas": model.gammas(), "train_seconds": seconds,
            "steps": config.train.epochs * config.train.steps_per_epoch, "variant": variant,
            "backbone_drift": backbone_drift(config, model)}


def _ops_the_outputs_need(function):
    """Names of the ops of a concrete function's graph that its outputs
    depend on (the graph also holds ops whose results nothing reads)."""
    needed, stack = set(), [tensor.op for tensor in function.outputs]
    while stack:
        op = stack.pop()
        if op.name not in needed:
            needed.add(op.name)
            stack += [tensor.op for tensor in op.inputs] + list(op.control_inputs)
    return needed


def graph_flops(function):
    """Float operations (multiply-add = 2) of the ops a concrete function's
    outputs need, by TensorFlow's graph profiler (per-op statistics)."""
    import tensorflow as tf

    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(graph=function.graph, cmd="graph", options=options)
    flops, stack = {}, list(profile.children)
    while stack:
        node = stack.pop()
        flops[node.name] = node.float_ops
        stack += node.children
    return sum(flops.get(name, 0) for name in _ops_the_outputs_need(function))


def measure_head(head, size=512, repeats=5):
    """Parameters, GFLOPs and batch-1 forward latency of `head` at `size`^2."""
    import tensorflow as tf

    from danet_tf import DANet

    model = DANet(3, backbone="resnet18", head=head)
    net = model.inference_model(fold_batch_norm=True)
    spec = tf.TensorSpec((1, size, size, 3), tf.float32)
    forward = tf.function(lambda x: net(x, training=False))
    flops = graph_flops(forward.get_concrete_function(spec))
    x = tf.random.normal((1, size, size, 3), seed=0)
    return {"params": model.count_params(),
            "head_params": model.head.count_params(),
            "gflops": flops / 1e9,
            "latency_s": median_time(lambda: forward(x).numpy(), repeats)[0]}


def cached(path, command, timeout):
    """Runs `command` (a child writing `path`) unless `path` exists; returns
    its JSON. The child's stdout (progress) passes through; its stderr (the
    runtime's start-up lines) is shown only if it fails."""
    if not os.path.isfile(path):
        proc = subprocess.run(command, stderr=subprocess.PIPE, text=True, timeout=timeout)
        if proc.returncode or not os.path.isfile(path):
            print(f"FAILED {' '.join(command[3:])}:\n{proc.stderr[-1500:]}", file=sys.stderr)
            return None
    with open(path) as f:
        return json.load(f)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run of the plumbing")
    parser.add_argument("--workdir", default=os.path.join(HERE, "results", "ablation"))
    parser.add_argument("--heads", nargs="+", default=list(HEADS), choices=HEADS)
    parser.add_argument("--tasks", nargs="+", default=list(LONG_RANGE), choices=LONG_RANGE)
    parser.add_argument("--seeds", nargs="+", type=int,
                        help=f"default: {' '.join(map(str, SEEDS))} (--quick: 0)")
    parser.add_argument("--no-control", action="store_true", help="skip the local-texture runs")
    parser.add_argument("--no-train", action="store_true",
                        help="train nothing: tabulate the cached runs (and measure the heads)")
    parser.add_argument("--figure", metavar="PNG",
                        help="draw the position attention of seed 0's trained --figure-head on "
                             "the first --tasks task and stop")
    parser.add_argument("--figure-head", choices=POSITION_ATTENTION_HEADS, default="danet",
                        help="the head whose attention --figure draws (default: danet)")
    parser.add_argument("--pretrain", action="store_true", help=argparse.SUPPRESS)  # in a child
    parser.add_argument("--train", nargs=3, metavar=("HEAD", "TASK", "SEED"),
                        help=argparse.SUPPRESS)  # one run, in a child
    parser.add_argument("--measure", metavar="HEAD", help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="official", choices=VARIANTS,
                        help=argparse.SUPPRESS)  # of a --train or --probe child
    parser.add_argument("--probe", nargs=3, metavar=("HEAD", "TASK", "SEED"),
                        help=argparse.SUPPRESS)  # gradient norms of a run's first steps
    args = parser.parse_args(argv)
    args.seeds = args.seeds or ([0] if args.quick else list(SEEDS))
    args.given_workdir = args.workdir
    args.workdir = os.path.abspath(args.workdir + ("_quick" if args.quick else ""))
    return args


def child(args):
    """One job of a child process (pretraining, a run, a measure), cached as JSON."""
    from danet_tf.files import write_text

    results_dir = os.path.join(args.workdir, "results")
    if args.pretrain:
        from benchmarks.ablation_backbone import pretrain_backbone

        record = pretrain_backbone(args.workdir, args.quick)
        path, result = os.path.join(args.workdir, "backbone", "pretrain.json"), record
    elif args.train:
        head, task, seed = args.train
        result = train_one(head, task, int(seed), args.workdir, args.quick, args.variant)
        path = os.path.join(results_dir, run_name(head, task, seed, args.variant) + ".json")
    elif args.probe:
        from benchmarks.finetune_probe import gradient_norms

        head, task, seed = args.probe
        config = run_config(head, task, int(seed), args.workdir, args.quick, args.variant)
        result = gradient_norms(config, PROBE_STEPS if not args.quick else 2)
        name = run_name(head, task, seed, args.variant)
        path = os.path.join(args.workdir, "probes", name + ".json")
    else:
        result = measure_head(args.measure, size=64 if args.quick else 512,
                              repeats=2 if args.quick else 5)
        path = os.path.join(results_dir, f"measure_{args.measure}.json")
    write_text(path, json.dumps(result))


def pretrained(me, workdir):
    """Pretrains the backbone unless cached; prints its curve."""
    start = time.time()
    record = cached(os.path.join(workdir, "backbone", "pretrain.json"), me + ["--pretrain"],
                    timeout=3 * 3600)
    if record is None:
        sys.exit(1)
    curve = " ".join(f"{100 * v:.1f}" for v in record["val_miou_per_epoch"])
    print(f"backbone: FCN val mIoU % per epoch of {record['steps_per_epoch']} steps: {curve}; "
          f"best {100 * record['best_miou']:.1f} at epoch {record['best_epoch']} "
          f"({time.time() - start:.0f} s)", flush=True)


def main(argv=None):
    args = parse_args(argv)
    results_dir = os.path.join(args.workdir, "results")
    os.makedirs(results_dir, exist_ok=True)
    if args.figure:
        from benchmarks.ablation_figure import attention_figure

        print(attention_figure(args.workdir, args.tasks[0], args.figure, args.figure_head))
        return
    if args.pretrain or args.train or args.measure or args.probe:
        return child(args)
    me = [sys.executable, "-m", "benchmarks.ablation", "--workdir", args.given_workdir] + (
        ["--quick"] if args.quick else [])
    # Seed by seed over every head and task, the control last: a cut-off run
    # leaves complete rows.
    jobs = [(h, t, s) for s in args.seeds for t in args.tasks for h in args.heads]
    if not args.no_control:
        jobs += [(h, "textures", args.seeds[0]) for h in args.heads]
    if args.no_train:  # tabulate what is cached
        jobs = [job for job in jobs if os.path.isfile(
            os.path.join(results_dir, "{}_{}_seed{}.json".format(*job)))]
    else:
        pretrained(me, args.workdir)
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
