"""What the fine-tuning study (`benchmarks/finetune_study.py`) measures
besides scores: how far a run's backbone moved from where it started, the
backbone gradient of each loss over the first steps, and the starting point
of the `pam_init` runs (DANet whose position branch is a trained PAM-only
head's)."""

import os

import keras
import numpy as np

from benchmarks.ablation_config import pam_init_path, run_config, run_name
from danet_tf.files import atomic_path


def _flat(variables):
    return np.concatenate([np.ravel(keras.ops.convert_to_numpy(v)) for v in variables])


def starting_model(config):
    """The run's model before its first step: built and given its starting
    weights (the pretrained backbone, or `model.init_from`)."""
    from danet_tf.train.task import build_model, load_pretrained_backbone

    keras.utils.set_random_seed(config.data.seed)
    model = build_model(config)
    load_pretrained_backbone(config, model)
    return model


def backbone_drift(config, model):
    """Relative L2 distance of `model`'s trainable backbone weights from the
    run's starting ones: |w - w0| / |w0| over all of them."""
    start = _flat(starting_model(config).backbone.trainable_variables)
    end = _flat(model.backbone.trainable_variables)
    return float(np.linalg.norm(end - start) / np.linalg.norm(start))


def gradient_norms(config, steps):
    """Trains the run's first `steps` steps (its recipe, its data) and
    returns, per step, the L2 norm of each loss's gradient on the trainable
    backbone weights (unweighted, per output) and of the weighted total's."""
    import tensorflow as tf

    from danet_tf.train.task import build_inputs, build_losses, build_metrics, compile_model

    model = starting_model(config)
    compile_model(config, model, build_metrics(config))
    losses, weights = build_losses(config, model)
    backbone = model.backbone.trainable_variables
    in_backbone = [any(v is b for b in backbone) for v in model.trainable_variables]
    rows = []
    for images, masks in build_inputs(config)[0].take(steps):
        with tf.GradientTape(persistent=True) as tape:
            outputs = model(images, training=True)
            per_output = {k: losses[k](masks, outputs[k]) for k in losses}
            total = tf.add_n([weights[k] * v for k, v in per_output.items()])
        row = {k: float(tf.linalg.global_norm(tape.gradient(v, backbone)))
               for k, v in per_output.items()}
        grads = tape.gradient(total, model.trainable_variables)
        row["total"] = float(tf.linalg.global_norm(
            [g for g, inside in zip(grads, in_backbone) if inside]))
        model.optimizer.apply_gradients(zip(grads, model.trainable_variables))
        rows.append(row)
    return rows


def make_pam_init(workdir, task, seed, quick):
    """Writes (once) the `pam_init` run's starting DANet: the pretrained
    backbone, the position branch (`conv5a`, `sa`, `conv51`, `conv6`) of the
    trained PAM-only head of `task` and `seed`, the rest freshly initialised."""
    path = pam_init_path(workdir, task, seed)
    if os.path.isfile(path):
        return path
    name = run_name("pam", task, seed)
    pam = keras.models.load_model(os.path.join(workdir, "exports", name, f"{name}.keras"))
    model = starting_model(run_config("danet", task, seed, workdir, quick))
    for layer in pam.head.layers:
        if layer.weights:
            model.head.get_layer(layer.name).set_weights(layer.get_weights())
    with atomic_path(path) as tmp:
        model.save(tmp)
    return path
