"""The ablation's tables (`benchmarks/ablation.py`): the heads' cost and
control score, then one table per long-range task."""

import numpy as np

from danet_tf.data.synthetic import TASK_CLASS_NAMES
from danet_tf.models.head import HEADS

# The long-range tasks, and the classes whose label only the far half decides.
CUE_CLASSES = {"context": (1, 2), "marker": (2, 3)}


def mean_std(values, scale=100.0, digits=1):
    """`mean ± sample std` of the non-missing values (x `scale`), or `—`."""
    values = [scale * v for v in values if v is not None]
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def _seed_runs(results, head, task, seeds):
    return [r for r in (results.get((head, task, s)) for s in seeds) if r]


def heads_table(results, measures, seeds):
    """Cost of each head at 512², and its control (local-texture) mIoU."""
    lines = ["| head | params (M): model, head | GFLOPs 512² | forward 512² s "
             "| local-texture mIoU % (control) |", "|---|---|---|---|---|"]
    for head in HEADS:
        measure = measures.get(head) or {}
        params = (f"{measure['params'] / 1e6:.2f}, {measure['head_params'] / 1e6:.2f}"
                  if measure else "—")
        gflops = f"{measure['gflops']:.1f}" if measure else "—"
        latency = f"{measure['latency_s']:.3f}" if measure else "—"
        control = _seed_runs(results, head, "textures", seeds)
        lines.append(f"| {head} | {params} | {gflops} | {latency} "
                     f"| {mean_std([r['miou'] for r in control])} |")
    return "\n".join(lines)


def task_table(results, task, seeds):
    """One long-range task: mIoU, the cue classes' IoU and the γs per head,
    and each head's gap to the FCN (difference of the seed means)."""
    names = [TASK_CLASS_NAMES[task][c] for c in CUE_CLASSES[task]]
    lines = [f"| head | mIoU % ({len(seeds)} seed{'s' if len(seeds) > 1 else ''}) | vs FCN | "
             + " | ".join(f"{n} IoU %" for n in names) + " | γ PAM | γ CAM |",
             "|---|---|---|" + "---|" * len(names) + "---|---|"]
    fcn = [r["miou"] for r in _seed_runs(results, "fcn", task, seeds)]
    for head in HEADS:
        runs = _seed_runs(results, head, task, seeds)
        missing = "" if len(runs) == len(seeds) else f" ({len(runs)} of {len(seeds)} seeds)"
        gap = (f"{100 * (np.mean([r['miou'] for r in runs]) - np.mean(fcn)):+.1f}"
               if runs and fcn and head != "fcn" else "—")
        cues = " | ".join(mean_std([r["per_class_iou"][c] for r in runs])
                          for c in CUE_CLASSES[task])
        lines.append(
            f"| {head} | {mean_std([r['miou'] for r in runs])}{missing} | {gap} | {cues} "
            f"| {mean_std([r['gammas'].get('pam') for r in runs], 1.0, 3)} "
            f"| {mean_std([r['gammas'].get('cam') for r in runs], 1.0, 3)} |")
    return "\n".join(lines)


def table(results, measures, seeds):
    """The heads' cost and control, then one table per long-range task."""
    parts = [heads_table(results, measures, seeds)]
    for task in CUE_CLASSES:
        parts += [f"{task}:", task_table(results, task, seeds)]
    return "\n\n".join(parts)
