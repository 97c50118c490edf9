"""The ablation's runs (`benchmarks/ablation.py`): the tasks, the training
budget, the `--quick` sizes and the `ExperimentConfig` of one run. The
ablation, its backbone pretraining and its figure all read them from here."""

import os

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


def backbone_path(workdir):
    return os.path.join(workdir, "backbone", "backbone.weights.h5")


def run_config(head, task, seed, workdir, quick):
    """The `ExperimentConfig` of one run: the task's preset, `STEPS` steps
    from the pretrained backbone, this head and seed."""
    from danet_tf.config import load_config

    name = f"{head}_{task}_seed{seed}"
    preset, changes = TASKS[task]
    overrides = changes + [f"train.steps_per_epoch={STEPS}"] + (QUICK if quick else []) + [
        f"model.head={head}", f"data.seed={seed}", f"train.name={name}",
        f"model.backbone_weights={backbone_path(workdir)}",
        f"train.model_dir={workdir}/runs/{name}", f"train.export_dir={workdir}/exports",
        "train.export_formats=[keras]"]
    return load_config(preset, overrides=overrides)
