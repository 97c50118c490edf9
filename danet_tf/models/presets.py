"""Presets: a trained DANet as a directory, in keras-hub's layout.

    <preset>/config.json        the model, `keras.saving.serialize_keras_object`
    <preset>/model.weights.h5   its weights
    <preset>/metadata.json      what the weights are: dataset, class names,
                                palette, input normalisation, evaluation
                                protocol, source checkpoint and its SHA-256,
                                the score the source reports; versions, date

`DANet.from_preset(name_or_directory)` reads one; a catalogue name
(`danet_tf.models.preset_catalog`) is first downloaded, checked and converted
into the cache (`danet_tf.models.preset_cache`). `DANet.save_to_preset`
writes one. The config names keras-hub's `DANetBackbone`, so keras-hub's
loaders read a preset too (`danet_tf.models.hub`; its preprocessor is
DANet's normalisation when the preset has none). Nothing here imports
TensorFlow: presets load on every backend.
"""

import datetime
import json
import os
import warnings
import zipfile

import keras

from danet_tf.files import atomic_path
from danet_tf.models.danet import DANet
from danet_tf.models.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from danet_tf.models.preset_catalog import config_of_checkpoint, mmseg_protocol, preset_spec
from danet_tf.models.weights import load_mmseg_danet, mmseg_architecture, read_torch_checkpoint

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
# The model's input contract, as metadata states it (0-255 RGB).
NORMALIZATION = {"color": "RGB", "mean": [round(m * 255, 3) for m in IMAGENET_MEAN],
                 "std": [round(s * 255, 3) for s in IMAGENET_STD]}


# config.json names keras-hub's class for the network (`danet_tf.models.hub`;
# the same config and weights as `DANet`, which reads it without keras-hub).
DANET_CLASS = {"module": "danet_tf.models.danet", "class_name": "DANet",
               "registered_name": "danet_tf>DANet"}
HUB_BACKBONE_CLASS = {"module": "danet_tf.models.hub", "class_name": "DANetBackbone",
                      "registered_name": "danet_tf>DANetBackbone"}


def hub_backbone_config(model):
    """`model`'s serialised config as keras-hub's `DANetBackbone`."""
    config = {**keras.saving.serialize_keras_object(model), **HUB_BACKBONE_CLASS}
    for key in ("build_config", "compile_config"):
        config.pop(key, None)
    return config


class PresetError(ValueError):
    """A preset directory or name that cannot be used (one line)."""


def is_preset_dir(path):
    return os.path.isfile(os.path.join(path, CONFIG_FILE)) and os.path.isfile(
        os.path.join(path, WEIGHTS_FILE))


def save_to_preset(model, directory, metadata=None):
    """Writes `model` as a preset directory (whole or not at all).

    Refuses an existing non-empty `directory`: a preset is never overwritten.
    """
    check_new_preset_dir(directory)
    from danet_tf import __version__

    record = {
        "keras_version": keras.__version__,
        "danet_tf_version": __version__,
        "parameter_count": int(model.count_params()),
        "date_saved": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d@%H:%M:%S"),
        "normalization": NORMALIZATION,
        **(metadata or {}),
    }
    with atomic_path(directory) as tmp:
        os.makedirs(tmp)
        with open(os.path.join(tmp, CONFIG_FILE), "w") as f:
            json.dump(hub_backbone_config(model), f, indent=2)
        model.save_weights(os.path.join(tmp, WEIGHTS_FILE))
        with open(os.path.join(tmp, METADATA_FILE), "w") as f:
            json.dump(record, f, indent=2, default=list)
    return directory


def check_new_preset_dir(directory):
    """Refuses a `directory` that holds anything (a preset is never overwritten)."""
    if os.path.isdir(directory) and os.listdir(directory):
        raise FileExistsError(f"{directory} exists and is not empty; choose a new directory.")


def preset_metadata(directory):
    """The preset's `metadata.json` as a dict (`{}` when it has none)."""
    path = os.path.join(directory, METADATA_FILE)
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def resolve_preset(preset, cache_dir=None):
    """A preset directory for `preset`: the directory itself, or the cached
    conversion of a catalogue name (downloaded on first use)."""
    if os.path.isdir(preset):
        if not is_preset_dir(preset):
            raise PresetError(f"{preset}: not a preset directory (expected {CONFIG_FILE} and "
                              f"{WEIGHTS_FILE}).")
        return preset
    from danet_tf.models.preset_cache import cached_preset

    return cached_preset(preset, cache_dir)


def load_preset(preset, load_weights=True, cache_dir=None, **overrides):
    """The `DANet` of a preset directory or catalogue name.

    Args:
        preset: str. A preset directory or a catalogue name.
        load_weights: bool. `False` gives the architecture only.
        cache_dir: str. Where catalogue presets are cached (default
            `$DANET_TF_CACHE`, else `~/.cache/danet_tf`).
        **overrides: constructor arguments to change, e.g.
            `attention_block_size="auto"`, `dtype="mixed_bfloat16"`, or
            `num_classes=5` to fine-tune on other classes (the classifiers
            then start anew; every other weight is loaded).
    """
    directory = resolve_preset(preset, cache_dir)
    with open(os.path.join(directory, CONFIG_FILE)) as f:
        config = json.load(f)
    if config.get("registered_name") not in (DANET_CLASS["registered_name"],
                                             HUB_BACKBONE_CLASS["registered_name"]):
        raise PresetError(f"{directory}: {CONFIG_FILE} holds a "
                          f"{config.get('registered_name') or config.get('class_name')!r}, "
                          "not a danet_tf>DANetBackbone.")
    config["config"].update(overrides)
    model = keras.saving.deserialize_keras_object({**config, **DANET_CLASS})
    if load_weights:
        load_trained_weights(model, directory)
    return model


# DANet arguments that change no weight's shape or place: they may differ
# between a trained model and a model that starts from its weights.
NOT_STRUCTURAL = {"name", "trainable", "dropout", "synchronized_bn", "attention_block_size",
                  "input_shape", "dtype", "num_classes", "align_corners"}


def source_architecture(source):
    """The `DANet` arguments of a trained model to start from: a preset
    (directory or catalogue name, not downloaded here) or a `.keras` file."""
    if os.path.isdir(source):
        with open(os.path.join(resolve_preset(source), CONFIG_FILE)) as f:
            return json.load(f)["config"]
    if source.endswith(".keras") and os.path.isfile(source):
        with zipfile.ZipFile(source) as archive:
            return json.loads(archive.read("config.json"))["config"]
    spec = preset_spec(source)  # a catalogue name, else a one-line error naming them
    return {"num_classes": spec.num_classes, "backbone": spec.backbone, "deep_stem": True,
            "aux_head": True, "align_corners": spec.protocol.align_corners, "head": "danet",
            "output_stride": 8, "multi_grid": False, "backbone_layout": "torchvision"}


def architecture_differences(model_config, source):
    """`["model.deep_stem: True (init_from) -> False", ...]`: the structural
    arguments in which a model's config differs from `source`'s."""
    stated = source_architecture(source)
    return [f"model.{key}: {stated[key]!r} ({source}) -> {model_config.get(key)!r}"
            for key in sorted(stated) if key not in NOT_STRUCTURAL
            and model_config.get(key) != stated[key]]


def load_trained_weights(model, source):
    """Loads the weights of `source` (preset directory or name, `.keras`
    file) into a `model` of its architecture; with another class count the
    classifiers keep their fresh initialisation. Returns the report line."""
    path = source if source.endswith(".keras") else os.path.join(
        resolve_preset(source), WEIGHTS_FILE)
    classes = source_architecture(source)["num_classes"]
    with warnings.catch_warnings():
        # Keras warns with the values of every kernel it skips; classifiers
        # that start anew are what a new class count asks for.
        warnings.filterwarnings("ignore", "A total of .* objects could not be loaded")
        model.load_weights(path, skip_mismatch=classes != model.num_classes)
    fresh = "" if classes == model.num_classes else (
        f"; the classifiers start anew ({classes} -> {model.num_classes} classes)")
    return f"weights: from {source}{fresh}"


def convert_mmseg_checkpoint(path, config_name=None):
    """An mmseg DANet checkpoint as `(DANet, preset metadata)`.

    The architecture is read off the tensors; `config_name` (the mmseg
    config's file stem; by default the catalogue's name of a released
    checkpoint's file name) gives the dataset, crop and test protocol, and
    with it the upsampling semantics (align_corners). Without one the model
    uses mmseg's defaults: align_corners=False, whole-image test.
    """
    config_name = config_name or config_of_checkpoint(os.path.basename(path))
    state, meta = read_torch_checkpoint(path)
    architecture = mmseg_architecture(state)
    record = {"source": {"format": "mmseg", "checkpoint": os.path.basename(path),
                         "config": config_name}}
    protocol = None
    if config_name:
        data_preset, num_classes, backbone, crop, protocol = mmseg_protocol(config_name)
        if (num_classes, backbone) != (architecture["num_classes"], architecture["backbone"]):
            raise PresetError(
                f"{path}: a {architecture['backbone']} with {architecture['num_classes']} "
                f"classes, but --config {config_name} is a {backbone} with {num_classes}.")
        record.update(dataset=data_preset, crop_size=list(crop),
                      evaluation=protocol.to_dict())
    if meta.get("CLASSES"):
        record["class_names"] = [str(name) for name in meta["CLASSES"]]
    if meta.get("PALETTE"):
        record["palette"] = [[int(c) for c in color] for color in meta["PALETTE"]]
    model = DANet(**architecture, align_corners=protocol.align_corners if protocol else False)
    load_mmseg_danet(model, state)
    return model, record
