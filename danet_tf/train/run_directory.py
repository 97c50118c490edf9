"""A run directory knows what it is: its config.json says which model and data
its checkpoints belong to, and a run never resumes someone else's checkpoints.
`RunDirectory` is the one description of its files.
"""

import datetime
import json
import os
import secrets

from danet_tf.files import write_text

# Fields that may change between the runs of one directory: how long to train
# and how to evaluate or read the files, not what is learnt from what.
MAY_CHANGE = {
    "data": {"eval_batch_size", "on_bad_example", "download", "data_dir", "manual_dir",
             "shuffle_buffer"},
    "model": {"backbone_weights", "init_from", "attention_block_size"},
}
MODES = ("auto", "resume", "restart")


def read_json(path, default=None):
    """The JSON object in `path`, or `default` when there is no such file."""
    if not os.path.isfile(path):
        return default
    with open(path) as f:
        return json.load(f)


class RunDirectory:
    """The files of one run directory `path` (`train.model_dir`):

    - `run.json`: `{"id": ...}`, which run the checkpoints belong to;
    - `config.json`: the run's config;
    - `checkpoint/ckpt-<epoch>.weights.h5` and `checkpoint/state.json`
      (`ResumableCheckpoint`), the last complete epoch;
    - `best-<epoch>.weights.h5` and `best.json` (its scores, epoch and
      weights file), `last.json` (the last validation's scores and epoch).
    """

    def __init__(self, path):
        self.path = path
        self.run_file = os.path.join(path, "run.json")
        self.config_file = os.path.join(path, "config.json")
        self.checkpoint_dir = os.path.join(path, "checkpoint")
        self.checkpoint_state = os.path.join(self.checkpoint_dir, "state.json")
        self.best_file = os.path.join(path, "best.json")
        self.last_file = os.path.join(path, "last.json")

    def run_id(self):
        """The id of the run (`run.json`), or `None` before it starts."""
        return (read_json(self.run_file) or {}).get("id")

    def has_checkpoint(self):
        return os.path.isfile(self.checkpoint_state)

    def latest_checkpoint(self):
        """`(epoch, path)` of the last complete epoch checkpoint, or `None`."""
        state = read_json(self.checkpoint_state)
        if not state:
            return None
        return int(state["epoch"]), os.path.join(self.checkpoint_dir, state["weights"])

    def best(self):
        """`{"miou", "pixel_accuracy", "per_class_iou", "epoch", "weights"}` of
        the best model, or `None`."""
        return read_json(self.best_file)

    def last(self):
        """The last validation's scores and epoch, or `None`."""
        return read_json(self.last_file)

    def best_weights(self):
        """The best model's `.weights.h5`, or `None`."""
        best = self.best()
        return os.path.join(self.path, best["weights"]) if best else None


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


def time_stamp():
    return datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def aside_path(path, stamp):
    """`<path>.previous-<stamp>`, numbered on when that exists too."""
    base = f"{path.rstrip(os.sep)}.previous-{stamp}"
    candidate, number = base, 1
    while os.path.exists(candidate):
        number += 1
        candidate = f"{base}-{number}"
    return candidate


def check_run_directory(config, mode="auto"):
    """Checks `train.model_dir` against `config`; touches nothing.

    Args:
        config: the `ExperimentConfig` of this run.
        mode: `"auto"` resumes a directory whose checkpoints belong to the
            same model and data and refuses any other; `"resume"` also
            refuses a directory without checkpoints; `"restart"` accepts any
            (`prepare_run_directory` moves it aside).

    Raises:
        ValueError: the directory holds another run (the message names the
            directory, its config.json and the fields that differ).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}. Received: {mode!r}")
    model_dir = config.train.model_dir
    run = RunDirectory(model_dir)
    saved_path = run.config_file
    if mode == "restart":
        return
    if mode == "resume" and not run.has_checkpoint():
        raise ValueError(f"--resume: {model_dir} holds no checkpoint to resume from.")
    if not run.has_checkpoint() or not os.path.isfile(saved_path):
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


def prepare_run_directory(config, mode="auto", stamp=None):
    """Makes `train.model_dir` ready for this run, after `check_run_directory`:
    with `mode="restart"` an existing directory first moves to
    `aside_path(dir, stamp)`. Gives a new run its id (`run.json`).

    Returns:
        Where the previous run went, or `None`.
    """
    model_dir = config.train.model_dir
    moved = None
    if mode == "restart" and os.path.exists(model_dir):
        moved = aside_path(model_dir, stamp or time_stamp())
        os.replace(model_dir, moved)
    run = RunDirectory(model_dir)
    if run.run_id() is None:
        identity = f"{config.train.name}-{stamp or time_stamp()}-{secrets.token_hex(2)}"
        write_text(run.run_file, json.dumps({"id": identity}))
    return moved
