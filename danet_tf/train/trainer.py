"""A training run in its run directory: `start_training` builds what `fit`
needs (distribution, model, restored checkpoint), `fit` trains and returns a
frozen `RunResult`. Preparing the directory (`run_directory`), the start-up
block, exporting and printing are the command's business (`cli/train.py`)."""

import dataclasses
import os
import time

import keras

from danet_tf.data.catalog import class_names_of
from danet_tf.data.folder import SkipCounter
from danet_tf.files import write_text
from danet_tf.train import distribute
from danet_tf.train.callbacks import (
    BestModel,
    CollapseWarning,
    ResumableCheckpoint,
    Throughput,
)
from danet_tf.train.interrupt import InterruptGuard
from danet_tf.train.run_directory import RunDirectory
from danet_tf.train.task import (
    build_inputs,
    build_metrics,
    build_model,
    compile_model,
    load_pretrained_backbone,
)


@dataclasses.dataclass(frozen=True)
class TrainingSession:
    """What exists before the first step: the model (restored from the run's
    last checkpoint, if any), its metric and checkpoint callback, and where
    training resumes."""

    config: object
    distribution: distribute.Distribution
    model: keras.Model
    metric: keras.metrics.Metric
    checkpoint: ResumableCheckpoint
    initial_epoch: int
    initial_step: int
    weights_report: str


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What a run did and where its results are.

    `best` and `last` are the records of `best.json` and `last.json`
    (`epoch`, `miou`, `pixel_accuracy`, `per_class_iou`); `trained` is
    `False` when the run had already reached `train.epochs`.
    """

    backend: str
    replicas: int
    epochs: int
    steps: int
    resumed_at_epoch: int
    resumed_at_step: int
    trained: bool
    train_seconds: float
    final_train_loss: float | None
    best: dict | None
    last: dict | None
    best_weights: str | None
    skipped_examples: tuple
    model_dir: str
    is_chief: bool


def start_distribution(config, strategy_name):
    """The `Distribution`, with every worker's initial weights seeded alike.

    On JAX seed before `keras.distribution` is set up (repeated 2-device runs
    were not repeatable otherwise); on TensorFlow the strategy comes first
    (multi-worker collectives must be configured before the runtime starts).
    """
    if config.train.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    if keras.backend.backend() != "tensorflow":
        keras.utils.set_random_seed(config.data.seed)
    dist = distribute.setup_distribution(strategy_name)
    keras.utils.set_random_seed(config.data.seed)
    return dist


def start_training(config, strategy_name="auto"):
    """Builds, compiles and restores the model of the run in `train.model_dir`."""
    t = config.train
    dist = start_distribution(config, strategy_name)
    if dist.is_chief:
        write_text(os.path.join(t.model_dir, "config.json"), config.to_json())
    with dist.scope:
        model = build_model(config)
        metric = build_metrics(config)
        compile_model(config, model, metric)
        checkpoint = ResumableCheckpoint(t.model_dir, model, dist.is_chief)
    initial_epoch = checkpoint.restore()
    weights_report = (load_pretrained_backbone(config, model) if initial_epoch == 0
                      else f"resumed from {checkpoint.latest}")
    initial_step = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    return TrainingSession(config, dist, model, metric, checkpoint, initial_epoch, initial_step,
                           weights_report)


def fit(session, verbose=1):
    """Trains from `session.initial_epoch` to `train.epochs`, validating as
    configured; returns the `RunResult`. A run already at `train.epochs`
    trains nothing and reports its recorded scores."""
    config, t, chief = session.config, session.config.train, session.distribution.is_chief
    skips = SkipCounter()
    train_ds, val_ds = build_inputs(config, session.initial_epoch, skips)
    best = BestModel(session.metric, class_names_of(config.data), t.model_dir, chief,
                     os.path.join(t.model_dir, "logs"))
    guard = InterruptGuard()
    callbacks = [Throughput(config.data.batch_size), best, session.checkpoint]
    if config.model.head == "danet":
        callbacks.insert(2, CollapseWarning(best, chief))  # reads `best`'s scores after it
    if chief:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(t.model_dir, "logs"),
                                                     update_freq="epoch"))
    callbacks.append(guard)  # last: an epoch that ended is checkpointed before it stops
    trained = session.initial_epoch < t.epochs
    start, history = time.time(), None
    if trained:
        with guard:
            history = session.model.fit(
                train_ds, epochs=t.epochs, initial_epoch=session.initial_epoch,
                steps_per_epoch=t.steps_per_epoch, validation_data=val_ds,
                validation_freq=t.eval_every_epochs, callbacks=callbacks,
                verbose=verbose if chief else 0, shuffle=False)
    if best.last_scores is None and (trained or RunDirectory(t.model_dir).last() is None):
        # No validation ran inside `fit` (epochs < eval_every_epochs): this
        # evaluation is the run's validation, and may be its best model.
        session.metric.reset_state()
        session.model.evaluate(val_ds, verbose=0)
        best.set_model(session.model)
        best.record(session.metric.scores(), t.epochs)
    return _result(session, trained, time.time() - start, history, best, skips)


def _result(session, trained, seconds, history, best, skips):
    t = session.config.train
    run = RunDirectory(t.model_dir)
    return RunResult(
        backend=keras.backend.backend(),
        replicas=session.distribution.num_replicas,
        epochs=t.epochs,
        steps=int(keras.ops.convert_to_numpy(session.model.optimizer.iterations)),
        resumed_at_epoch=session.initial_epoch,
        resumed_at_step=session.initial_step,
        trained=trained,
        train_seconds=round(seconds, 1),
        final_train_loss=float(history.history["loss"][-1]) if history else None,
        best=run.best(),
        last=run.last(),
        best_weights=run.best_weights(),
        skipped_examples=tuple(skips.skipped.items()),
        model_dir=t.model_dir,
        is_chief=session.distribution.is_chief,
    )
