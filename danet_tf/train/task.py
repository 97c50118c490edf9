"""The training task's seams (TF Model Garden's `build_model`, `build_inputs`,
`build_losses`, `build_metrics`): each takes an `ExperimentConfig` and returns
one thing. The recipe itself is `DANet.compile()`'s: these only pass the
config's values to it."""

import keras

from danet_tf.data.pipeline import build_eval_dataset, build_train_dataset
from danet_tf.models.backbone_weights import load_backbone_weights
from danet_tf.models.dilated_resnet import BACKBONES
from danet_tf.models.from_config import build_model
from danet_tf.models.losses import official_losses
from danet_tf.models.metrics import SegmentationMetric
from danet_tf.models.optimizer import PolyDecay, official_optimizer
from danet_tf.models.presets import load_trained_weights

__all__ = ["build_inputs", "build_losses", "build_metrics", "build_model", "build_optimizer",
           "compile_model", "load_pretrained_backbone"]


def load_pretrained_backbone(config, model):
    """Applies `model.init_from` (a trained DANet), else
    `model.backbone_weights`; returns the report line."""
    m = config.model
    if m.init_from:
        return load_trained_weights(model, m.init_from)
    return load_backbone_weights(model.backbone, m.backbone_weights,
                                 BACKBONES[m.backbone], m.backbone_layout)


def build_inputs(config, seed_offset=0, skips=None):
    """Train and val datasets of `(images, masks)`."""
    return (build_train_dataset(config.data, seed_offset, skips),
            build_eval_dataset(config.data, skips))


def build_losses(config, model):
    """`(losses, loss_weights)`: the official losses with the config's OHEM
    and aux weight, one per output of `model`."""
    t = config.train
    return official_losses(tuple(model.output), t.aux_loss_weight, t.main_losses,
                           ohem=t.ohem, ohem_threshold=t.ohem_threshold,
                           ohem_min_kept=t.ohem_min_kept)


def build_metrics(config):
    return SegmentationMetric(config.data.num_classes, name="miou")


# `train.optimizer`: the official recipe (PyTorch-semantics SGD) or AdamW.
OPTIMIZERS = ("sgd", "adamw")


def build_optimizer(config):
    t = config.train
    total_steps = t.epochs * t.steps_per_epoch
    if t.optimizer == "adamw":
        schedule = PolyDecay(t.learning_rate, total_steps, t.poly_power, t.warmup_steps)
        return keras.optimizers.AdamW(schedule, weight_decay=t.weight_decay)
    if t.optimizer not in OPTIMIZERS:
        raise ValueError(f"train.optimizer must be one of {', '.join(OPTIMIZERS)}. "
                         f"Received: {t.optimizer!r}")
    return official_optimizer(t.learning_rate, total_steps, t.poly_power, t.warmup_steps,
                              t.momentum, t.weight_decay, t.head_lr_multiplier)


def freeze_gammas(model, kinds):
    """Keeps the γ of the attention modules `kinds` ("pam", "cam") out of
    training, at the value it has."""
    layers = model.attention_layers()
    for kind in kinds:
        layers[kind].gamma.trainable = False


def compile_model(config, model, metric):
    """`model.compile()` with the config's optimizer, losses and `metric`
    (`train.frozen_gammas` left out of the trainable variables)."""
    freeze_gammas(model, config.train.frozen_gammas)
    losses, weights = build_losses(config, model)
    # `train.jit` (XLA) is a choice on TensorFlow; JAX always compiles.
    jit = config.train.jit if keras.backend.backend() == "tensorflow" else "auto"
    model.compile(optimizer=build_optimizer(config), loss=losses, loss_weights=weights,
                  metrics={"logits": [metric]}, jit_compile=jit)
    # Create the optimizer's variables now so a checkpoint restores into them.
    model.optimizer.build(model.trainable_variables)
