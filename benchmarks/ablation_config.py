"""The ablation's runs (`benchmarks/ablation.py`): the tasks, the training
budget, the `--quick` sizes and the `ExperimentConfig` of one run. The
ablation, its backbone pretraining and its figure all read them from here."""

import os

from danet_tf import recipe

STEPS = 360
# Per task: the preset, and what the control changes of the context preset
# (the same image size and budget, the quick start's six texture classes).
TASKS = {
    "context": ("context", []),
    "marker": ("marker", []),
    "textures": ("context", ["data.synthetic_task=textures", "data.name=synthetic",
                             "data.num_classes=6"]),
}
QUICK = ["data.synthetic_train_size=32", "data.synthetic_val_size=8", "data.batch_size=4",
         "data.eval_batch_size=4", "train.steps_per_epoch=3", "train.warmup_steps=0",
         "data.synthetic_image_size=[32, 64]", "data.crop_size=[32, 64]"]


# The fine-tuning study's recipe changes (`benchmarks/finetune_study.py`),
# each alone on top of the ablation's recipe. `pam_init` starts DANet's
# position branch from the trained PAM-only head of the same task and seed
# (`model.init_from`, a file the study makes).
VARIANTS = {
    "official": [],
    "loss_mean": ["train.main_losses=mean"],
    "backbone_lr_third": [f"train.learning_rate={recipe.LEARNING_RATE / 3!r}",
                          f"train.head_lr_multiplier={3 * recipe.HEAD_LR_MULTIPLIER!r}"],
    "cam_gamma_frozen": ["train.frozen_gammas=[cam]"],
    "pam_gamma_frozen": ["train.frozen_gammas=[pam]"],
    "warmup_90": ["train.warmup_steps=90"],
    "no_warmup": ["train.warmup_steps=0"],
    "pam_init": [],
}


def run_name(head, task, seed, variant="official"):
    """`{head}_{task}_seed{seed}`, with `_{variant}` before the seed unless official."""
    middle = "" if variant == "official" else f"_{variant}"
    return f"{head}_{task}{middle}_seed{seed}"


def pam_init_path(workdir, task, seed):
    return os.path.join(workdir, "init", f"danet_{task}_pam_init_seed{seed}.keras")


def backbone_path(workdir):
    return os.path.join(workdir, "backbone", "backbone.weights.h5")


def run_config(head, task, seed, workdir, quick, variant="official"):
    """The `ExperimentConfig` of one run: the task's preset, `STEPS` steps
    from the pretrained backbone, this head and seed, the recipe `variant`."""
    from danet_tf.config import load_config

    name = run_name(head, task, seed, variant)
    preset, changes = TASKS[task]
    init = ([f"model.init_from={pam_init_path(workdir, task, seed)}"]
            if variant == "pam_init" else [])
    overrides = changes + [f"train.steps_per_epoch={STEPS}"] + (QUICK if quick else []) + [
        f"model.head={head}", f"data.seed={seed}", f"train.name={name}",
        f"model.backbone_weights={backbone_path(workdir)}",
        f"train.model_dir={workdir}/runs/{name}", f"train.export_dir={workdir}/exports",
        "train.export_formats=[keras]"] + VARIANTS[variant] + init
    return load_config(preset, overrides=overrides)
