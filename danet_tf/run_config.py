"""The config that goes with a trained model: the run's `config.json` saved
beside it, or the model, class names and evaluation protocol a preset
directory states, over a preset or config file the user names."""

import dataclasses
import json
import os

from danet_tf.config import ModelConfig, apply_overrides, load_config, update


def find_run_config(model_path):
    """The run's `config.json` saved next to a model (by training, beside its
    `.keras` export), or `None`."""
    path = os.path.join(os.path.dirname(os.path.abspath(model_path)), "config.json")
    return path if os.path.isfile(path) else None


def load_config_for_model(model_path, preset=None, config_file=None, overrides=()):
    """The config a command that reads a model should use.

    A preset directory states its model, class names and evaluation protocol
    (`preset_values`), over `preset` / `config_file` or else its dataset's
    preset. For other models: `preset` / `config_file` when given; else the
    run's own `config.json` next to the model (`find_run_config`), so that
    class names, sizes and data follow the run; else `quickstart`.

    Returns:
        `(ExperimentConfig, where it came from)`.
    """
    stated = preset_values(model_path)
    if stated:
        dataset, values = stated
        config = update(load_config(preset or dataset, config_file, ()), values, model_path)
        return apply_overrides(config, overrides), model_path
    if not preset and not config_file:
        config_file = find_run_config(model_path)
    config = load_config(preset or "quickstart", config_file, overrides)
    return config, config_file or preset or "quickstart"


def _read_json(path):
    with open(path) as f:
        return json.load(f)


def preset_values(directory):
    """`(data preset, config values)` a preset directory states (its
    `metadata.json` and `config.json`, see `stated_values`), or `None` for
    anything else."""
    paths = [os.path.join(str(directory), f) for f in ("metadata.json", "config.json")]
    if not all(os.path.isfile(p) for p in paths):
        return None
    metadata, model = (_read_json(p) for p in paths)
    return stated_values(model.get("config", {}), metadata)


def stated_values(model_config, metadata):
    """`(data preset, config values)` of a trained model: the model fields of
    its `DANet` config, and its metadata's dataset, class names and
    evaluation protocol (`danet_tf.models.presets`)."""
    fields = {f.name for f in dataclasses.fields(ModelConfig)}
    values = {"model": {k: v for k, v in model_config.items() if k in fields},
              "data": {"num_classes": model_config["num_classes"],
                       "class_names": metadata.get("class_names")}}
    evaluation = dict(metadata.get("evaluation") or {})
    evaluation.pop("align_corners", None)  # the model's own (model.align_corners)
    if evaluation:
        values["eval"] = evaluation
    return metadata.get("dataset") or "quickstart", values
