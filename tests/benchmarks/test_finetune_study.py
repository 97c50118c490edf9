"""The fine-tuning study's pieces (`benchmarks/finetune_study.py`,
`finetune_probe.py`) on tiny sizes: each recipe change is the config it
names, the probe's gradient norms weigh the losses as the recipe does, the
drift is the formula, and `pam_init` starts DANet's position branch from the
PAM-only head and everything else from the pretrained backbone."""

import os

import keras
import numpy as np
import pytest

from benchmarks import ablation_config, finetune_probe, finetune_study
from danet_tf.cli.schema import validate_config
from danet_tf.config import load_config

pytestmark = pytest.mark.slow


def test_each_variant_is_the_one_change_it_names(tmp_path):
    workdir = str(tmp_path)
    base = ablation_config.run_config("danet", "textures", 1, workdir, quick=False)
    changed = {}
    for variant in ablation_config.VARIANTS:
        config = validate_config(
            ablation_config.run_config("danet", "textures", 1, workdir, False, variant))
        assert config.train.name == ablation_config.run_name("danet", "textures", 1, variant)
        changed[variant] = {f"{section}.{k}": v
                            for section in ("train", "model")
                            for k, v in vars(getattr(config, section)).items()
                            if v != vars(getattr(base, section))[k] and k not in ("name",
                                                                                   "model_dir")}
    assert changed["official"] == {}
    assert changed["loss_mean"] == {"train.main_losses": "mean"}
    assert changed["backbone_lr_third"] == {"train.learning_rate": pytest.approx(0.01 / 3),
                                            "train.head_lr_multiplier": 30.0}
    lr = changed["backbone_lr_third"]
    folder = load_config("folder").train  # the own-data preset uses the recipe that held
    assert {"train.learning_rate": folder.learning_rate,
            "train.head_lr_multiplier": folder.head_lr_multiplier} == lr
    assert lr["train.learning_rate"] * lr["train.head_lr_multiplier"] == pytest.approx(
        base.train.learning_rate * base.train.head_lr_multiplier)  # the head's rate is kept
    assert changed["cam_gamma_frozen"] == {"train.frozen_gammas": ("cam",)}
    assert changed["warmup_90"] == {"train.warmup_steps": 90} and base.train.warmup_steps == 36
    assert changed["no_warmup"] == {"train.warmup_steps": 0}
    assert changed["pam_init"] == {
        "model.init_from": ablation_config.pam_init_path(workdir, "textures", 1)}
    jobs = sum((finetune_study.phase_jobs(p, (0, 1, 2)) for p in finetune_study.PHASES), [])
    paths = [finetune_study.job_path(workdir, *job) for job in jobs]
    assert len(set(paths)) == len(jobs)  # no two jobs share a cache file
    markers = finetune_study.phase_jobs("markers", (0, 1, 2))
    assert max(markers.index(("train", "pam", "marker", "official", s)) for s in (0, 1, 2)) \
        < min(markers.index(("train", "danet", "marker", "pam_init", s)) for s in (0, 1, 2))


@pytest.fixture
def workdir(tmp_path):
    """A workdir whose 'pretrained' backbone is a random ResNet-18's."""
    config = ablation_config.run_config("fcn", "marker", 0, str(tmp_path), quick=True)
    config.model.backbone_weights = None
    model = finetune_probe.starting_model(config)
    os.makedirs(os.path.dirname(ablation_config.backbone_path(str(tmp_path))))
    model.backbone.save_weights(ablation_config.backbone_path(str(tmp_path)))
    return str(tmp_path)


def test_gradient_norms_weigh_the_losses_as_the_recipe(workdir):
    rows = {v: finetune_probe.gradient_norms(
        ablation_config.run_config("danet", "marker", 0, workdir, True, v), steps=2)
        for v in ("official", "loss_mean")}
    first, third = rows["official"][0], rows["loss_mean"][0]  # the same state and batch
    for name in ("logits", "pam_logits", "cam_logits"):
        assert third[name] == pytest.approx(first[name], rel=1e-4)
    assert third["total"] == pytest.approx(first["total"] / 3, rel=1e-4)
    assert first["total"] <= first["logits"] + first["pam_logits"] + first["cam_logits"]
    assert rows["official"][1]["logits"] != first["logits"]  # the second step is after a step


def test_drift_is_the_relative_distance_from_the_start(workdir):
    config = ablation_config.run_config("fcn", "marker", 0, workdir, True)
    model = finetune_probe.starting_model(config)
    assert finetune_probe.backbone_drift(config, model) == 0.0
    variables = model.backbone.trainable_variables
    start = np.concatenate([np.ravel(keras.ops.convert_to_numpy(v)) for v in variables])
    first = variables[0]
    delta = np.full(first.shape, 0.01, "float32")
    first.assign(keras.ops.convert_to_numpy(first) + delta)
    expected = np.linalg.norm(delta.astype("float64")) / np.linalg.norm(start.astype("float64"))
    assert finetune_probe.backbone_drift(config, model) == pytest.approx(expected, rel=1e-4)


def test_pam_init_takes_the_branch_from_the_pam_head_and_the_rest_from_the_start(workdir):
    pam = finetune_probe.starting_model(
        ablation_config.run_config("pam", "marker", 0, workdir, True))
    for layer in pam.head.layers:
        layer.set_weights([w + 1.0 for w in layer.get_weights()])
    name = ablation_config.run_name("pam", "marker", 0)
    os.makedirs(os.path.join(workdir, "exports", name))
    pam.save(os.path.join(workdir, "exports", name, f"{name}.keras"))
    path = finetune_probe.make_pam_init(workdir, "marker", 0, quick=True)
    danet = keras.models.load_model(path)
    for layer in ("conv5a", "sa", "conv51", "conv6"):
        for got, want in zip(danet.head.get_layer(layer).get_weights(),
                             pam.head.get_layer(layer).get_weights(), strict=True):
            np.testing.assert_array_equal(got, want)
    start = finetune_probe.starting_model(
        ablation_config.run_config("danet", "marker", 0, workdir, True))
    for got, want in zip(danet.backbone.get_weights(), start.backbone.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)  # the pretrained backbone, not the PAM run's
    for layer in ("conv5c", "sc", "conv52", "conv7", "conv8"):
        for got, want in zip(danet.head.get_layer(layer).get_weights(),
                             start.head.get_layer(layer).get_weights(), strict=True):
            np.testing.assert_array_equal(got, want)
    config = ablation_config.run_config("danet", "marker", 0, workdir, True, "pam_init")
    assert finetune_probe.backbone_drift(config, danet) == 0.0  # drift from where it started
