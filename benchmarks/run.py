"""The benchmark suite: one command, markdown tables, JSON with the machine.

    python -m benchmarks.run [--quick] [--only SECTION ...] [--out benchmarks/results/latest.json]

Run from the repository root.

Sections: pipeline pam forward flops train (default: all of these); official
(this project's deployment paths next to the official PyTorch DANet on the same
weights; long: about 45 minutes on 2 cores); int8 (official's int8 and float32
rows alone, and this CPU's int8 floor); multiscale (official's last table
alone: multi-scale + flip sliding-window evaluation, about 25 minutes); batch
(whole-collection prediction: a loop against the Beam pipeline, `batch.py`).
Each case runs in its own process (peak RSS per case). Times are medians of
several runs after a warm-up. --quick uses fewer repeats and skips the
largest cases.
"""

import argparse
import json
import os
import time

from benchmarks import batch, official_tables, sections
from benchmarks.runner import HERE, describe_machine, machine
from danet_tf.files import write_text


def official(args, results):
    results["official"], tables = official_tables.official_section(args.workdir, args.quick)
    return tables


def int8(args, results):
    """The int8 paths next to the float32 ones and the official model, and
    this CPU's floor (`official`'s int8 rows without the bfloat16 ones)."""
    from danet_tf.models.precision import cpu_flags, int8_class

    flags = cpu_flags()
    results["int8"], tables = official_tables.official_section(
        args.workdir, args.quick, rows=official_tables.int8_rows(flags), multiscale=False)
    verdict = official_tables.int8_verdict(results["int8"]["sizes"], int8_class(flags))
    return tables + [f"int8 class of this CPU: {int8_class(flags)} (flags: {', '.join(flags)})\n"
                     + "\n".join(verdict)]


def multiscale(args, results):
    workdir, _ = official_tables.prepare_official(args.workdir, [])
    results["multiscale"], table = official_tables.official_multiscale_section(workdir)
    return [table]


def batch_prediction(args, results):
    workdir = args.workdir or os.path.join(HERE, "results", "batch")
    results["batch"], table = batch.run(workdir, images=16 if args.quick else 64)
    return ["### Segmenting a collection of 512x512 images\n\n" + table]


# name -> (function, in the default run)
SECTIONS = {
    "pipeline": (sections.pipeline_section, True),
    "pam": (sections.pam_section, True),
    "forward": (sections.forward_section, True),
    "flops": (sections.flops_section, True),
    "train": (sections.train_section, True),
    "official": (official, False),
    "int8": (int8, False),
    "multiscale": (multiscale, False),
    "batch": (batch_prediction, False),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "latest.json"))
    parser.add_argument("--only", nargs="+", choices=SECTIONS, metavar="SECTION",
                        help="sections: " + " ".join(SECTIONS))
    parser.add_argument("--workdir", help="official, multiscale, batch: where the models and "
                                          "inputs go (default: a new temporary directory)")
    args = parser.parse_args(argv)
    chosen = args.only or [name for name, (_, default) in SECTIONS.items() if default]
    if "official" in chosen and "multiscale" in chosen:
        chosen.remove("multiscale")  # official's last table is the multi-scale one
    results = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
               "quick": args.quick}
    tables = []
    for name in chosen:
        tables.extend(SECTIONS[name][0](args, results))
    write_text(args.out, json.dumps(results, indent=2))
    print(describe_machine(results["machine"]) + "\n")
    print("\n\n".join(tables))
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    main()
