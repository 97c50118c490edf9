"""A run directory knows what it is: its config.json says which model and data
its checkpoints belong to, and a run never resumes someone else's checkpoints.
"""

import datetime
import json
import os

# Fields that may change between the runs of one directory: how long to train
# and how to evaluate or read the files, not what is learnt from what.
MAY_CHANGE = {
    "data": {"eval_batch_size", "on_bad_example", "download", "data_dir", "manual_dir",
             "shuffle_buffer"},
    "model": {"backbone_weights", "attention_block_size"},
}
MODES = ("auto", "resume", "restart")


def config_differences(saved, current):
    """`["model.backbone: resnet18 -> resnet50", ...]` for the model and data fields."""
    differences = []
    for section in ("model", "data"):
        old, new = saved.get(section, {}), current.get(section, {})
        for key in sorted(set(old) | set(new)):
            if key in MAY_CHANGE[section]:
                continue
            a, b = old.get(key), new.get(key)
            if (list(a) if isinstance(a, (list, tuple)) else a) != \
                    (list(b) if isinstance(b, (list, tuple)) else b):
                differences.append(f"{section}.{key}: {a!r} -> {b!r}")
    return differences


def has_checkpoint(model_dir):
    return os.path.isfile(os.path.join(model_dir, "checkpoint", "state.json"))


def prepare_run_directory(config, mode="auto"):
    """Checks `train.model_dir` against `config` before anything is written.

    Args:
        config: the `ExperimentConfig` of this run.
        mode: `"auto"` resumes a directory whose checkpoints belong to the
            same model and data and refuses any other; `"resume"` also
            refuses a directory without checkpoints; `"restart"` moves an
            existing directory aside (`<dir>.previous-<time>`) and starts
            afresh.

    Raises:
        ValueError: the directory holds another run (the message names the
            directory, its config.json and the fields that differ).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}. Received: {mode!r}")
    model_dir = config.train.model_dir
    saved_path = os.path.join(model_dir, "config.json")
    if mode == "restart" and os.path.exists(model_dir):
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        os.replace(model_dir, f"{model_dir.rstrip(os.sep)}.previous-{stamp}")
        return
    if mode == "resume" and not has_checkpoint(model_dir):
        raise ValueError(f"--resume: {model_dir} holds no checkpoint to resume from.")
    if not has_checkpoint(model_dir) or not os.path.isfile(saved_path):
        return
    with open(saved_path) as f:
        saved = json.load(f)
    differences = config_differences(saved, json.loads(config.to_json()))
    if differences:
        raise ValueError(
            f"{model_dir} holds checkpoints of another run ({saved_path}): "
            + "; ".join(differences[:6]) + ("; ..." if len(differences) > 6 else "")
            + ". Pass --restart to move it aside and start afresh, or choose another "
            "directory (--model-dir, or --set train.name=...)."
        )
