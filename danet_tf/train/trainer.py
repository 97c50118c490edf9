"""Training: config -> strategy -> data -> model -> `fit` -> best model export.

The seams follow TF Model Garden's segmentation task (`build_model`,
`build_inputs`, `build_losses`, `build_metrics`); the loop is Keras `fit`.
"""

import dataclasses
import json
import os
import subprocess
import sys
import time

import keras

from danet_tf.data.catalog import class_names_for
from danet_tf.data.folder import SkipCounter
from danet_tf.data.pipeline import build_eval_dataset, build_train_dataset, with_output_keys
from danet_tf.deploy import export
from danet_tf.deploy.export_report import export_all
from danet_tf.files import write_text
from danet_tf.models.danet import DANet
from danet_tf.models.dilated_resnet import BACKBONES
from danet_tf.models.head import head_output_names
from danet_tf.models.losses import SegmentationCrossEntropy
from danet_tf.models.metrics import SegmentationMetric
from danet_tf.models.optimizer import PolyDecay, TorchSGD
from danet_tf.models.weights import load_backbone_weights
from danet_tf.train import distribute
from danet_tf.train.callbacks import (
    BestModel,
    ResumableCheckpoint,
    Throughput,
    best_score,
    best_weights_path,
    print_scores,
)
from danet_tf.train.run_directory import prepare_run_directory
from danet_tf.train.run_summary import describe_run


def build_model(config):
    """An uncompiled `DANet` from `ModelConfig` + the data's class count."""
    model_config = dataclasses.asdict(config.model)
    model_config.pop("backbone_weights")
    return DANet(num_classes=config.data.num_classes, **model_config)


def load_pretrained_backbone(config, model):
    """Applies `model.backbone_weights`; returns the report line."""
    m = config.model
    return load_backbone_weights(model.get_layer("backbone"), m.backbone_weights,
                                 BACKBONES[m.backbone], m.backbone_layout)


def output_names(config):
    return head_output_names(config.model.head) + (
        ("aux_logits",) if config.model.aux_head else ())


def build_inputs(config, seed_offset=0, skips=None):
    """Train and val datasets with one label entry per model output."""
    keys = output_names(config)
    train = with_output_keys(build_train_dataset(config.data, seed_offset, skips), keys)
    val = with_output_keys(build_eval_dataset(config.data, skips), keys)
    return train, val


def build_losses(config):
    """Losses and weights: 1 for each main output (DANet's three, or the one
    of another head), `aux_loss_weight` for aux."""
    t = config.train
    loss = SegmentationCrossEntropy(
        ohem=t.ohem, ohem_threshold=t.ohem_threshold, ohem_min_kept=t.ohem_min_kept
    )
    losses = {k: loss for k in output_names(config)}
    weights = {k: (t.aux_loss_weight if k == "aux_logits" else 1.0) for k in losses}
    return losses, weights


def build_metrics(config):
    return SegmentationMetric(config.data.num_classes, name="miou")


def build_optimizer(config):
    t = config.train
    schedule = PolyDecay(t.learning_rate, t.epochs * t.steps_per_epoch, t.poly_power,
                         t.warmup_steps)
    if t.optimizer == "adamw":
        return keras.optimizers.AdamW(schedule, weight_decay=t.weight_decay)
    if t.optimizer != "sgd":
        raise ValueError(f"train.optimizer must be sgd or adamw. Received: {t.optimizer!r}")
    multipliers = {"head/": t.head_lr_multiplier, "aux_": t.head_lr_multiplier}
    return TorchSGD(schedule, t.momentum, t.weight_decay, lr_multipliers=multipliers)


def compile_model(config, model, metric):
    losses, weights = build_losses(config)
    # `train.jit` (XLA) is a choice on TensorFlow; JAX always compiles.
    jit = config.train.jit if keras.backend.backend() == "tensorflow" else "auto"
    model.compile(
        optimizer=build_optimizer(config),
        loss=losses,
        loss_weights=weights,
        metrics={"logits": [metric]},
        jit_compile=jit,
    )
    # Create the optimizer's variables now so a checkpoint restores into them.
    model.optimizer.build(model.trainable_variables)


def next_version(export_dir, name):
    """1 + the highest integer version under `export_dir/name` (TF Serving layout)."""
    directory = os.path.join(export_dir, name)
    versions = ([int(d) for d in os.listdir(directory) if d.isdigit()]
                if os.path.isdir(directory) else [])
    return max(versions, default=0) + 1


def export_best(config, weights_path):
    """Exports the best weights in `train.export_formats`; returns what was written.

    SavedModel, TFLite and ONNX are TensorFlow-side: on another backend the
    `.keras` file is written here and exported by `danet-export` in a
    TensorFlow-backend subprocess.
    """
    t = config.train
    model = build_model(config)
    model.load_weights(weights_path)
    keras_path = os.path.join(t.export_dir, t.name, f"{t.name}.keras")
    written = {"keras_model": export.export_keras(model, keras_path)}
    # The run's config beside the model: `danet-export` reads class names,
    # input size and calibration data from it.
    write_text(os.path.join(t.export_dir, t.name, "config.json"),
               config.to_json())
    formats = [f for f in t.export_formats if f != "keras"]
    version = next_version(t.export_dir, t.name)
    if formats and keras.backend.backend() == "tensorflow":
        written["exports"] = export_all(model, config.data, t.export_dir, t.name, version, formats,
                                        class_names=config.data.class_names)
    elif formats:
        written["exports"] = _export_with_tensorflow(config, keras_path, version, formats)
    return written


def _export_with_tensorflow(config, keras_path, version, formats):
    """Runs `danet-export` on `keras_path` under the TensorFlow backend."""
    t = config.train
    command = [sys.executable, "-m", "danet_tf.cli.export", "--model", keras_path,
               "--name", t.name, "--version", str(version), "--export-dir", t.export_dir,
               "--config", os.path.join(t.model_dir, "config.json"), "--formats", *formats]
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"Export under the TensorFlow backend failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout[result.stdout.index("{"):])


def train(config, strategy_name="auto", verbose=1, mode="auto"):
    """Runs (or resumes) a training run; returns `(summary dict, trained model)`.

    `mode`: `"auto"`, `"resume"` or `"restart"` (see `prepare_run_directory`).
    """
    t = config.train
    prepare_run_directory(config, mode)
    if t.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    # Same initial weights on every run (and every worker) for a given seed.
    # On JAX seed before keras.distribution is set up (repeated 2-device runs
    # were not repeatable otherwise); on TensorFlow the strategy comes first
    # (multi-worker collectives must be configured before the runtime starts).
    if keras.backend.backend() != "tensorflow":
        keras.utils.set_random_seed(config.data.seed)
    dist = distribute.setup_distribution(strategy_name)
    keras.utils.set_random_seed(config.data.seed)
    chief = dist.is_chief
    os.makedirs(t.model_dir, exist_ok=True)
    if chief:
        write_text(os.path.join(t.model_dir, "config.json"),
                   config.to_json())

    class_names = (config.data.class_names
                   or class_names_for(config.data.name, config.data.num_classes))
    with dist.scope:
        model = build_model(config)
        metric = build_metrics(config)
        compile_model(config, model, metric)
        checkpoint = ResumableCheckpoint(t.model_dir, model, chief)
    initial_epoch = checkpoint.restore()
    weights_report = (load_pretrained_backbone(config, model) if initial_epoch == 0
                      else f"resumed from {checkpoint.latest}")
    if chief and verbose:
        print(describe_run(config, dist, model, weights_report))
    initial_step = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    if initial_epoch and verbose:
        print(f"Resuming from {checkpoint.latest}: epoch {initial_epoch}, step {initial_step}")

    skips = SkipCounter()
    train_ds, val_ds = build_inputs(config, seed_offset=initial_epoch, skips=skips)
    log_dir = os.path.join(t.model_dir, "logs")
    best = BestModel(metric, class_names, t.model_dir, chief, log_dir)
    callbacks = [Throughput(config.data.batch_size), best, checkpoint]
    if chief:
        callbacks.append(keras.callbacks.TensorBoard(log_dir, update_freq="epoch"))

    start = time.time()
    history = None
    if initial_epoch < t.epochs:
        history = model.fit(
            train_ds,
            epochs=t.epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=t.steps_per_epoch,
            validation_data=val_ds,
            validation_freq=t.eval_every_epochs,
            callbacks=callbacks,
            verbose=verbose if chief else 0,
            shuffle=False,
        )
    elapsed = time.time() - start

    if best.last_scores is None:
        # No validation ran inside `fit` (e.g. epochs < eval_every_epochs):
        # this evaluation is the run's validation, and may be its best model.
        metric.reset_state()
        model.evaluate(val_ds, verbose=0)
        best.set_model(model)
        best.record(metric.scores(), t.epochs)
    summary = {
        "backend": keras.backend.backend(),
        "replicas": dist.num_replicas,
        "epochs": t.epochs,
        "steps": int(keras.ops.convert_to_numpy(model.optimizer.iterations)),
        "resumed_at_epoch": initial_epoch,
        "resumed_at_step": initial_step,
        "train_seconds": round(elapsed, 1),
        "final_val_miou": best.last_scores["miou"],
        "final_val_pixel_accuracy": best.last_scores["pixel_accuracy"],
        "best_val_miou": (best_score(t.model_dir) or {"miou": -1.0})["miou"],
        "final_train_loss": float(history.history["loss"][-1]) if history else None,
        "skipped_examples": len(skips),
        "model_dir": t.model_dir,
    }
    if skips.skipped and verbose:
        print(f"Skipped {len(skips)} bad examples (on_bad_example=skip):")
        for path, reason in list(skips.skipped.items())[:20]:
            print(f"  {path}: {reason}")
    best_weights = best_weights_path(t.model_dir)
    if chief and best_weights:
        summary.update(export_best(config, best_weights))
    if chief and verbose:
        print("\nValidation (last evaluation):")
        print_scores(best.last_scores, class_names)
        print("\nSummary:")
        for key, value in summary.items():
            if key == "exports":
                for fmt, info in value.items():
                    extra = {k: v for k, v in info.items() if k != "path"}
                    print(f"  {fmt}: {info['path']} {extra if extra else ''}")
            else:
                print(f"  {key}: {value}")
    return summary, model
