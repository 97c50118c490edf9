"""The fine-tuning study: why a DANet fine-tuned from the ablation's
pretrained backbone collapses on the local-texture control where the FCN
holds, and which recipe holds.

    python -m benchmarks.finetune_study [--workers 2] [--phases control causes ...]

Every run is one of `benchmarks/ablation.py`'s (same backbone, budget and
cache under `--workdir`), with one recipe change of
`ablation_config.VARIANTS` at a time, three seeds each. Phases, in order:
- `control`: FCN and DANet under the ablation's recipe on the control, and
  probes of their first `PROBE_STEPS` steps (each loss's gradient on the
  backbone);
- `causes`: DANet on the control with each candidate cause changed alone;
- `markers`: FCN, PAM-only and DANet on markers, DANet with CAM's γ frozen
  at 0, DANet whose position branch starts from the trained PAM-only head,
  and DANet with each of the two recipes that hold on the control;
- `heads`: the other heads on both tasks (the official table, 3 seeds);
- `twins`: all six heads on the twins task.
Runs go `--workers` at a time, each pinned to its own core (scores are
what this study reports; its training times are context only). Rerunning
prints the tables from the cache and trains only what is missing.
"""

import argparse
import concurrent.futures
import json
import os
import queue
import sys

from benchmarks.ablation import HERE, SEEDS, cached, pretrained
from benchmarks.ablation_config import run_name
from benchmarks.ablation_table import mean_std
from danet_tf.models.head import HEADS

CAUSES = ("loss_mean", "backbone_lr_third", "cam_gamma_frozen", "pam_gamma_frozen",
          "warmup_90", "no_warmup")
MARKER_RUNS = [("fcn", "official"), ("pam", "official"), ("danet", "official"),
               ("danet", "cam_gamma_frozen"), ("danet", "pam_init"), ("danet", "loss_mean"),
               ("danet", "backbone_lr_third")]
# The heads the earlier phases did not run on each task.
OTHER_HEADS = {"marker": tuple(h for h in HEADS if h not in ("fcn", "pam", "danet")),
               "textures": tuple(h for h in HEADS if h not in ("fcn", "danet"))}


def phase_jobs(phase, seeds):
    """`[(kind, head, task, variant, seed)]` of one phase; `kind` is `train` or `probe`."""
    if phase == "control":
        return ([("train", h, "textures", "official", s) for s in seeds for h in ("fcn", "danet")]
                + [("probe", h, "textures", v, s) for s in seeds
                   for h, v in (("fcn", "official"), ("danet", "official"),
                                ("danet", "loss_mean"))])
    if phase == "causes":
        return [("train", "danet", "textures", v, s) for v in CAUSES for s in seeds]
    if phase == "markers":  # the PAM-only runs first: pam_init starts from them
        return [("train", h, "marker", v, s) for h, v in MARKER_RUNS for s in seeds]
    if phase == "heads":
        return [("train", h, t, "official", s) for t, heads in OTHER_HEADS.items()
                for h in heads for s in seeds]
    return [("train", h, "context", "official", s) for h in HEADS for s in seeds]


PHASES = ("control", "causes", "markers", "heads", "twins")


def job_path(workdir, kind, head, task, variant, seed):
    folder = "results" if kind == "train" else "probes"
    return os.path.join(workdir, folder, run_name(head, task, seed, variant) + ".json")


def run_phase(me, workdir, jobs, workers):
    """Runs the missing jobs, `workers` at a time, each child pinned to a core
    of its own; returns `{job: record}` of those that exist afterwards."""
    cores = queue.Queue()
    for core in range(workers):
        cores.put(core)

    def one(job):
        kind, head, task, variant, seed = job
        core = cores.get()
        try:
            pin = ["taskset", "-c", str(core % os.cpu_count())] if workers > 1 else []
            return cached(job_path(workdir, *job),
                          pin + me + [f"--{kind}", head, task, str(seed), "--variant", variant],
                          timeout=3600)
        finally:
            cores.put(core)

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        records = dict(zip(jobs, pool.map(one, jobs)))
    return {job: record for job, record in records.items() if record}


def runs_table(records, task, seeds):
    """One row per (head, variant) on `task`: mIoU per seed, mean ± std, the
    gap to the official FCN, backbone drift and the γs."""
    rows = sorted({(h, v) for (kind, h, t, v, _) in records if kind == "train" and t == task},
                  key=lambda hv: (list(HEADS).index(hv[0]), hv[1] != "official",
                                  hv[1]))
    fcn = [records[k]["miou"] for k in records
           if k[0] == "train" and k[1:4] == ("fcn", task, "official")]
    lines = [f"| head | recipe | mIoU % per seed ({', '.join(map(str, seeds))}) | mean ± std "
             "| vs FCN | backbone drift | γ PAM | γ CAM |", "|---|---|---|---|---|---|---|---|"]
    for head, variant in rows:
        runs = [records.get(("train", head, task, variant, s)) for s in seeds]
        done = [r for r in runs if r]
        per_seed = " / ".join("—" if r is None else f"{100 * r['miou']:.1f}" for r in runs)
        mean = sum(r["miou"] for r in done) / len(done)
        gap = f"{100 * (mean - sum(fcn) / len(fcn)):+.1f}" if fcn and head != "fcn" else "—"
        lines.append(
            f"| {head} | {variant} | {per_seed} | {mean_std([r['miou'] for r in done])} | {gap} "
            f"| {mean_std([r.get('backbone_drift') for r in done], 1.0, 3)} "
            f"| {mean_std([r['gammas'].get('pam') for r in done], 1.0, 3)} "
            f"| {mean_std([r['gammas'].get('cam') for r in done], 1.0, 3)} |")
    return "\n".join(lines)


def probes_table(records, seeds):
    """Mean backbone gradient norm of each loss over the probed steps."""
    lines = ["| head | recipe | seeds | steps | gradient norm on the backbone, per loss "
             "(unweighted) | weighted total |", "|---|---|---|---|---|---|"]
    keys = sorted({(h, t, v) for (kind, h, t, v, _) in records if kind == "probe"})
    for head, task, variant in keys:
        probes = [records[k] for k in records
                  if k[0] == "probe" and k[1:4] == (head, task, variant)]
        outputs = [k for k in probes[0][0] if k != "total"]
        per_loss = ", ".join(
            f"{name} {mean_std([sum(r[name] for r in p) / len(p) for p in probes], 1.0, 3)}"
            for name in outputs)
        total = mean_std([sum(r["total"] for r in p) / len(p) for p in probes], 1.0, 3)
        lines.append(f"| {head} | {variant} | {len(probes)} | {len(probes[0])} | {per_loss} "
                     f"| {total} |")
    return "\n".join(lines)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default=os.path.join(HERE, "results", "ablation"))
    parser.add_argument("--phases", nargs="+", default=list(PHASES), choices=PHASES)
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--workers", type=int, default=2,
                        help="runs at a time, each on a core of its own (default: 2)")
    parser.add_argument("--no-train", action="store_true", help="tabulate the cached runs only")
    parser.add_argument("--quick", action="store_true", help="a smoke run of the plumbing")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    workdir = os.path.abspath(args.workdir + ("_quick" if args.quick else ""))
    me = [sys.executable, "-m", "benchmarks.ablation", "--workdir", args.workdir] + (
        ["--quick"] if args.quick else [])
    records = {}
    if not args.no_train:
        pretrained(me, workdir)
    for phase in args.phases:
        jobs = phase_jobs(phase, args.seeds)
        if args.no_train:
            records.update({job: json.load(open(job_path(workdir, *job))) for job in jobs
                            if os.path.isfile(job_path(workdir, *job))})
        else:
            records.update(run_phase(me, workdir, jobs, args.workers))
            print(f"phase {phase}: {sum(job in records for job in jobs)} of {len(jobs)} done",
                  flush=True)
    for task, title in (("textures", "control"), ("marker", "markers"), ("context", "twins")):
        if any(k[2] == task for k in records if k[0] == "train"):
            print(f"\n{title}:\n\n{runs_table(records, task, args.seeds)}")
    if any(k[0] == "probe" for k in records):
        print(f"\nprobes:\n\n{probes_table(records, args.seeds)}")


if __name__ == "__main__":
    main()
