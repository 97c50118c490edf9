"""Train DANet:
`python training/train.py --strategy mirrored [--preset NAME] [--set key=value ...]`.

With no arguments it trains the `quickstart` preset on the embedded synthetic
data and exports the best model under `saved_models/<train.name>/`. The same
command again resumes the run (and, once it is finished, prints its result
and exports nothing new unless its best model changed or --export asks).
"""

import argparse
import dataclasses
import os
import subprocess
import sys

from danet_tf.cli import command
from danet_tf.config import load_config
from danet_tf.train.distribute import STRATEGIES

BACKENDS = ("tensorflow", "jax", "torch")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--strategy", default="auto", choices=STRATEGIES,
                        help="tf.distribute strategy (TensorFlow); on JAX auto/mirrored = "
                             "keras.distribution.DataParallel over all local devices")
    parser.add_argument("--backend", choices=BACKENDS,
                        help="Keras backend (default: KERAS_BACKEND, else tensorflow)")
    parser.add_argument("--preset", default="quickstart",
                        help="a preset in danet_tf/configs/ (quickstart, cityscapes, ...) "
                             "or a YAML path")
    parser.add_argument("--config", help="YAML file applied on top of the preset")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override, e.g. --set train.epochs=3")
    parser.add_argument("--model-dir", help="shortcut for --set train.model_dir=... "
                        "(default: runs/<train.name>)")
    intent = parser.add_mutually_exclusive_group()
    intent.add_argument("--resume", action="store_true",
                        help="continue the run in the model dir (an error if it has none)")
    intent.add_argument("--restart", action="store_true",
                        help="move the run directory and its exports aside (both paths are "
                             "printed) and start afresh")
    parser.add_argument("--export", action="store_true",
                        help="export the best model even when its folder already holds it")
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument("--jit", action="store_true", help="XLA-compile the train step")
    return parser.parse_args(argv)


def use_backend(backend, argv):
    """Runs this command again in a child with `KERAS_BACKEND=backend` when
    Keras already runs another backend (it is chosen once, when Keras is
    first imported), and exits with the child's status."""
    import keras

    if backend is None or keras.backend.backend() == backend:
        return
    env = {**os.environ, "KERAS_BACKEND": backend}
    command = [sys.executable, "-m", "danet_tf.cli.train", *argv]
    sys.exit(subprocess.run(command, env=env).returncode)


def config_from_args(args):
    overrides = list(args.overrides)
    if args.model_dir:
        overrides.append(f"train.model_dir={args.model_dir}")
    if args.mixed_precision:
        overrides.append("train.mixed_precision=true")
    if args.jit:
        overrides.append("train.jit=true")
    return adopt_initial_model(load_config(args.preset, args.config, overrides), overrides)


def adopt_initial_model(config, overrides):
    """With `model.init_from`, the model fields are the trained model's
    (`--set model.*` still wins, and `check_before_training` refuses what
    would not load)."""
    if not config.model.init_from:
        return config
    from danet_tf.config import ModelConfig, apply_overrides, update
    from danet_tf.models.presets import source_architecture

    stated = source_architecture(config.model.init_from)
    fields = {f.name for f in dataclasses.fields(ModelConfig)}
    update(config.model, {k: v for k, v in stated.items() if k in fields}, "model.init_from")
    config.model.backbone_weights = None
    return apply_overrides(config, [o for o in overrides if o.strip().startswith("model.")])


def check_before_training(config, mode):
    """Everything that can be checked before a file is touched: the config,
    the data, the run directory and the export folder."""
    from danet_tf.cli.schema import validate_config
    from danet_tf.data.sources import check_data
    from danet_tf.deploy import layout
    from danet_tf.train.run_directory import RunDirectory, check_run_directory

    validate_config(config)
    if config.model.init_from:
        from danet_tf.models.presets import architecture_differences

        differences = architecture_differences(dataclasses.asdict(config.model),
                                               config.model.init_from)
        if differences:
            raise ValueError("model.init_from cannot start this model: "
                             + "; ".join(differences))
    check_data(config.data)
    check_run_directory(config, mode)
    if mode != "restart":
        t = config.train
        layout.check_owner(t.export_dir, t.name, RunDirectory(t.model_dir).run_id(),
                           "Pass --restart to move the run and its exports aside, or choose "
                           "another name (--set train.name=...).")


def start_run_directory(config, mode):
    """Prepares the run directory; with `--restart` the previous run and its
    exports move aside together, and both places are printed."""
    from danet_tf.deploy import layout
    from danet_tf.train.run_directory import aside_path, prepare_run_directory, time_stamp

    t, stamp = config.train, time_stamp()
    moved = prepare_run_directory(config, mode, stamp)
    if moved:
        print(f"restart: the previous run moved to {moved}")
    folder = layout.model_folder(t.export_dir, t.name)
    if mode == "restart" and os.path.isdir(folder):
        exports = aside_path(folder, stamp)
        os.replace(folder, exports)
        print(f"restart: its exports moved to {exports}")


def export_if_new(config, result, force=False):
    """Exports the run's best model unless its model folder already holds
    that epoch of this run (or `force`); returns the export report."""
    from danet_tf.deploy import layout
    from danet_tf.deploy.run_export import export_run
    from danet_tf.train.run_directory import RunDirectory

    t = config.train
    if not (result.is_chief and result.best_weights):
        return {}
    run = {"id": RunDirectory(t.model_dir).run_id(), "model_dir": t.model_dir,
           "epoch": result.best["epoch"], "val_miou": result.best["miou"]}
    exported = layout.owner(t.export_dir, t.name) or {}
    if not force and (exported.get("id"), exported.get("epoch")) == (run["id"], run["epoch"]):
        print(f"{layout.model_folder(t.export_dir, t.name)} already holds epoch {run['epoch']} "
              "of this run: nothing new to export (--export exports it again).")
        return {}
    return export_run(config, run, result.best_weights)


def print_result(config, result, exports):
    """The best epoch (the exported model) next to the last one, and where things are."""
    from danet_tf.data.catalog import class_names_of
    from danet_tf.models.metrics import format_scores_columns, scores_of_record

    best, last = result.best, result.last
    columns = {f"best: epoch {best['epoch']} (the exported model)": scores_of_record(best)}
    if last and last["epoch"] != best["epoch"]:
        columns[f"last: epoch {last['epoch']}"] = scores_of_record(last)
    print("\nValidation of the fused logits:")
    print(format_scores_columns(columns, class_names_of(config.data)))
    if not result.trained:
        print(f"\nThe run had already trained its {result.epochs} epochs "
              f"({result.model_dir}); raise train.epochs to train on.")
    print(f"\nsteps         {result.steps} ({result.backend}, {result.replicas} replica(s), "
          f"{result.train_seconds} s this time)")
    for path, reason in result.skipped_examples[:20]:
        print(f"skipped       {path}: {reason}")
    width = max([14] + [len(fmt) + 1 for fmt in exports])
    for fmt, info in exports.items():
        extra = {k: v for k, v in info.items() if k != "path"}
        print(f"{fmt:<{width}}{info['path']}{f' {extra}' if extra else ''}")


def write_examples(config, keras_model):
    """A sample scene, its prediction (colours, overlay) and, for DANet's head
    (both attention modules), its attention pictures in
    `<model_dir>/examples/`, with the commands that made them."""
    from danet_tf.cli import predict, visualize_attention

    out = os.path.join(config.train.model_dir, "examples")
    scene = predict.write_sample(os.path.join(out, "scene.png"))
    predict.main([scene, "--model", keras_model, "--out", out])
    made = "scene_overlay.png (training/predict.py"
    if config.model.head == "danet":
        visualize_attention.main([scene, "--model", keras_model, "--out",
                                  os.path.join(out, "attention")])
        made = "scene_overlay.png, attention/sheet.png (training/predict.py and " \
               "training/visualize_attention.py"
    print(f"\nexamples      {out}/: {made} made them; try them on your images)")
    return out


def interrupted(config):
    """The one line Ctrl-C leaves: where the last checkpoint is, and how to resume."""
    from danet_tf.train.run_directory import RunDirectory

    latest = RunDirectory(config.train.model_dir).latest_checkpoint()
    where = (f"the last checkpoint is epoch {latest[0]} ({latest[1]})" if latest
             else "no epoch had finished, so there is no checkpoint yet")
    print(f"\ninterrupted: {where}; run the same command again to resume.", file=sys.stderr)
    sys.exit(130)


def run(config, strategy="auto", mode="auto", export=False, verbose=1):
    """Checks, trains (or resumes) and exports one run; returns `(summary
    dict, trained model)`."""
    from danet_tf.train.run_summary import describe_run
    from danet_tf.train.trainer import fit, start_training

    check_before_training(config, mode)
    start_run_directory(config, mode)
    session = start_training(config, strategy)
    if session.distribution.is_chief and verbose:
        print(describe_run(config, session.distribution, session.model,
                           session.weights_report))
    result = fit(session, verbose)
    exports = export_if_new(config, result, export)
    if result.is_chief and verbose:
        print_result(config, result, exports)
    if result.is_chief and config.train.examples and "keras_model" in exports:
        write_examples(config, exports["keras_model"]["path"])
    summary = {**dataclasses.asdict(result), "exports": exports,
               "keras_model": exports.get("keras_model", {}).get("path")}
    return summary, session.model


@command
def main(argv=None):
    args = parse_args(argv)
    use_backend(args.backend, argv)
    config = config_from_args(args)
    mode = "resume" if args.resume else "restart" if args.restart else "auto"
    try:
        summary, _ = run(config, args.strategy, mode, args.export)
    except KeyboardInterrupt:
        interrupted(config)
    return summary


if __name__ == "__main__":
    main()
