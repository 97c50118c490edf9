"""Experiment configuration: typed dataclasses, YAML presets, `key=value` overrides."""

import dataclasses
import json
import os
import typing

import yaml

from danet_tf import recipe

# The presets ship inside the package (package data), so an installed
# `danet_tf` finds them wherever it lives.
PRESET_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


@dataclasses.dataclass
class DataConfig:
    """Where the examples come from and how they are augmented and batched."""

    source: str = "synthetic"  # synthetic | folder | cityscapes | pascal_voc | tfds | tfrecord
    name: str = "synthetic"  # dataset name for class names and palettes
    num_classes: int = 6
    class_names: list | None = None
    root: str | None = None  # folder / cityscapes / pascal_voc root
    image_dir: str | None = None  # folder: overrides root/<split>/images
    mask_dir: str | None = None  # folder: overrides root/<split>/masks
    tfds_name: str | None = None  # cityscapes | scene_parse150 | oxford_iiit_pet
    data_dir: str | None = None  # tfds data_dir
    manual_dir: str | None = None  # tfds manual_dir (Cityscapes zips)
    download: bool = False  # tfds: download and prepare (explicit network use)
    train_pattern: str | None = None  # tfrecord: file pattern of train shards
    val_pattern: str | None = None  # tfrecord: file pattern of val shards
    train_split: str = "train"
    val_split: str = "val"
    synthetic_train_size: int = 512
    synthetic_val_size: int = 64
    synthetic_image_size: typing.Any = 128  # int (square) or [height, width]
    synthetic_task: str = "textures"  # textures (local) | context, marker (long-range; ablation)
    crop_size: tuple = (128, 128)
    scale_range: tuple = (0.5, 2.0)
    base_size: int | None = None  # rescale relative to this long side
    flip: bool = True
    jitter: bool = False
    batch_size: int = 8  # global batch size
    eval_batch_size: int = 8
    shuffle_buffer: int = 1024
    seed: int = 0
    on_bad_example: str = "raise"  # raise | skip


@dataclasses.dataclass
class ModelConfig:
    head: str = "danet"  # danet | pam | cam | fcn | psp | aspp (the ablation's heads)
    backbone: str = "resnet50"
    output_stride: int = 8
    multi_grid: typing.Any = False
    deep_stem: bool = False
    aux_head: bool = False
    align_corners: bool = True
    dropout: float = 0.1
    synchronized_bn: bool = False
    attention_block_size: typing.Any = None  # None | "auto" | int (chunked exact PAM)
    backbone_layout: str = "torchvision"  # torchvision | caffe (keras.applications weights)
    # none | imagenet (keras.applications, caffe layout) | path to a torchvision
    # ResNet .pth (torchvision layout) or a keras.applications .h5 (caffe layout)
    backbone_weights: str | None = None
    # A trained DANet to fine-tune (a preset name or directory, or a .keras
    # file): the model fields default to its architecture, every weight starts
    # from it (the classifiers anew when data.num_classes differs), and
    # backbone_weights is not used.
    init_from: str | None = None


@dataclasses.dataclass
class TrainConfig:
    name: str = "danet"
    # Checkpoints, logs and config.json; None: runs/<name>.
    model_dir: str | None = None
    export_dir: str = "saved_models"
    epochs: int = 10
    steps_per_epoch: int = 100
    optimizer: str = "sgd"  # sgd (the official recipe, PyTorch semantics) | adamw
    learning_rate: float = recipe.LEARNING_RATE  # backbone LR; the head gets head_lr_multiplier x
    head_lr_multiplier: float = recipe.HEAD_LR_MULTIPLIER
    momentum: float = recipe.MOMENTUM
    weight_decay: float = recipe.WEIGHT_DECAY
    poly_power: float = recipe.POLY_POWER
    warmup_steps: int = 0
    aux_loss_weight: float = recipe.AUX_LOSS_WEIGHT
    # How the main outputs' cross-entropies (DANet's fused, position and
    # channel logits) combine: "sum" (the official recipe, 1 each) or "mean"
    # (1/n each: a DANet backbone gets one cross-entropy's gradient, as a
    # single-output head's does; docs/ablation.md, fine-tuning).
    main_losses: str = "sum"
    # Attention modules ("pam", "cam") whose γ stays at its initial 0, which
    # makes the module the identity (the ablation's diagnostics).
    frozen_gammas: tuple = ()
    ohem: bool = False
    ohem_threshold: float = 0.7
    ohem_min_kept: int = 100000
    mixed_precision: bool = False
    jit: bool = False
    eval_every_epochs: int = 1
    export_formats: tuple = ("keras", "saved_model")  # + tflite, openvino, openvino_int8, onnx
    # After exporting: a sample scene, its prediction and its attention
    # pictures in <model_dir>/examples/ (the quick start's first look).
    examples: bool = False


@dataclasses.dataclass
class EvalConfig:
    """The test protocol of `evaluate` and `predict`. `official`: DANet's
    (`MultiEvalModule`; windows, scales and flip from the commands' options).
    `mmseg`: mmsegmentation's, for its converted checkpoints (keep-ratio
    resize to `scale` (long, short), then whole images or `crop` windows at
    `stride`); a conversion records it."""

    protocol: str = "official"  # official | mmseg
    scale: tuple | None = None
    crop: tuple | None = None
    stride: tuple | None = None


PROTOCOLS = ("official", "mmseg")


@dataclasses.dataclass
class ExperimentConfig:
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)

    def to_dict(self):
        return dataclasses.asdict(self)

    def to_json(self):
        """The config as JSON (tuples as lists), as runs save it in config.json."""
        return json.dumps(self.to_dict(), indent=2, default=list)


def _coerce(value, current, where, checked=True):
    """Parses a YAML scalar/list for a field whose current value is `current`."""
    if isinstance(value, str):
        value = yaml.safe_load(value)
    if isinstance(current, int) and not isinstance(current, bool) and isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{where}: expected an integer. Received: {value!r}")
        value = int(value)
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(current, tuple) and isinstance(value, list):
        value = tuple(value)
    if checked:
        _check_type(value, current, where)
    return value


def _is_null(value):
    return value is None or (isinstance(value, str) and yaml.safe_load(value) is None)


def _check_type(value, current, where):
    """Refuses a value of another kind than the field's default (`None`
    defaults, and fields typed `Any`, take anything)."""
    if current is None:
        return
    expected = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
                tuple: "a list"}
    for kind, words in expected.items():
        if isinstance(current, kind):
            ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
            if kind is float:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not ok:
                raise ValueError(f"{where}: expected {words}. Received: {value!r}")
            return


def update(config, values, where="config"):
    """Updates nested dataclasses in place from a dict; unknown keys are errors."""
    for key, value in values.items():
        if not hasattr(config, key):
            fields = ", ".join(f.name for f in dataclasses.fields(config))
            raise ValueError(f"{where}: unknown key {key!r}. Expected one of: {fields}.")
        current = getattr(config, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ValueError(f"{where}.{key}: expected a mapping. Received: {value!r}")
            update(current, value, f"{where}.{key}")
        else:
            field_type = {f.name: f.type for f in dataclasses.fields(config)}[key]
            optional = type(None) in typing.get_args(field_type)
            checked = field_type is not typing.Any and not (optional and _is_null(value))
            setattr(config, key, _coerce(value, current, f"{where}.{key}", checked=checked))
    return config


def apply_overrides(config, overrides):
    """Applies `["train.epochs=3", "data.crop_size=[64, 64]"]` style overrides."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set expects key=value. Received: {item!r}")
        nested = value
        for part in reversed(key.strip().split(".")):
            nested = {part: nested}
        update(config, nested, "--set")
    return config


def load_config(preset="quickstart", config_file=None, overrides=()):
    """Preset YAML (by name or path), then `config_file`, then overrides."""
    config = ExperimentConfig()
    for path in filter(None, [preset, config_file]):
        if not os.path.isfile(path):
            path = os.path.join(PRESET_DIR, f"{path}.yaml")
        if not os.path.isfile(path):
            names = sorted(p[:-5] for p in os.listdir(PRESET_DIR) if p.endswith(".yaml"))
            raise FileNotFoundError(f"No config {path!r}. Presets: {', '.join(names)}.")
        with open(path) as f:
            values = yaml.safe_load(f) or {}
        values.pop("run", None)  # an export's config.json also names its run
        update(config, values, path)
    config = apply_overrides(config, overrides)
    if not config.train.model_dir:
        config.train.model_dir = os.path.join("runs", config.train.name)
    return config


def check_config(config):
    """Cross-field checks no single field's type can make (a one-line
    `ValueError` naming the fields)."""
    d = config.data
    if d.class_names is not None and len(d.class_names) != d.num_classes:
        raise ValueError(
            f"data.class_names has {len(d.class_names)} names but data.num_classes is "
            f"{d.num_classes}: give one name per class (class id 0 first).")
    e = config.eval
    if e.protocol not in PROTOCOLS:
        raise ValueError(f"eval.protocol must be one of {', '.join(PROTOCOLS)}. "
                         f"Received: {e.protocol!r}")
    if e.protocol == "mmseg" and not e.scale:
        raise ValueError("eval.protocol=mmseg needs eval.scale, the test resize (long, short), "
                         "e.g. --set 'eval.scale=[2048, 1024]'")
    if (e.crop is None) != (e.stride is None):
        raise ValueError("eval.crop and eval.stride go together (mmseg sliding windows).")
    return config
