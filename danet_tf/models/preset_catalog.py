"""The named trained DANets: mmsegmentation's 16 released checkpoints.

Each entry of `preset_catalog.csv` is read from mmsegmentation 1.2.2's `configs/danet/metafile.yaml`
(config name, weights URL, mIoU on the val split, single scale and with
multi-scale + flip where reported) and its config files (dataset, crop,
test protocol). The 8 hex digits before `.pth` in each file name are the
start of the file's SHA-256, which a download must match.
"""

import csv
import dataclasses
import os
import re

MMSEG_URL = "https://download.openmmlab.com/mmsegmentation/v0.5/danet/"

# config name -> (file under MMSEG_URL, mIoU, mIoU ms+flip or None), from
# preset_catalog.csv (package data).
def _read_catalogue():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "preset_catalog.csv")
    with open(path, newline="") as f:
        return {row["config"]: (row["file"], float(row["miou"]),
                                float(row["miou_ms_flip"]) if row["miou_ms_flip"] else None)
                for row in csv.DictReader(f)}


MMSEG_CONFIGS = _read_catalogue()

# mmseg dataset name in a config name -> (this project's data preset, classes,
# test-time keep-ratio resize scale (long, short) of its test pipeline).
MMSEG_DATASETS = {
    "cityscapes": ("cityscapes", 19, (2048, 1024)),
    "ade20k": ("ade20k", 150, (2048, 512)),
    "voc12aug": ("pascal_voc", 21, (2048, 512)),
}
# The 769x769 Cityscapes configs test by sliding window with align_corners=True
# (configs/danet/*769x769*.py); the others run whole images, align_corners=False.
SLIDE_CROP, SLIDE_STRIDE, SLIDE_SCALE = (769, 769), (513, 513), (2049, 1025)
_NAME = re.compile(r"^danet_r(\d+)-d8_\d+xb\d+-\d+k_([a-z0-9]+)-(\d+)x(\d+)$")


@dataclasses.dataclass(frozen=True)
class EvaluationProtocol:
    """mmseg's test protocol: keep-ratio resize of the image to `scale`
    (long, short), the model on the whole image or on `crop` windows at
    `stride` (logits averaged where they overlap), logits resized back to the
    image with `align_corners`, argmax."""

    scale: tuple
    crop: tuple | None = None
    stride: tuple | None = None
    align_corners: bool = False

    def to_dict(self):
        return {"protocol": "mmseg", **dataclasses.asdict(self)}


@dataclasses.dataclass(frozen=True)
class PresetSpec:
    """A named trained DANet: where its checkpoint is and what it is."""

    name: str
    url: str
    sha256_prefix: str
    source: str  # "mmseg"
    data_preset: str
    num_classes: int
    backbone: str
    crop_size: tuple
    protocol: EvaluationProtocol
    miou: float
    miou_ms_flip: float | None

    @property
    def file_name(self):
        return self.url.rsplit("/", 1)[1]


def mmseg_protocol(config_name):
    """Dataset, crop and test protocol a released mmseg DANet config name
    states (`danet_r50-d8_4xb2-40k_cityscapes-769x769`).

    Returns:
        `(data preset, num_classes, backbone, crop (h, w), EvaluationProtocol)`.
    """
    match = _NAME.match(config_name)
    if not match or match.group(2) not in MMSEG_DATASETS:
        raise ValueError(
            f"--config {config_name!r} is not an mmseg DANet config name "
            "(danet_r<depth>-d8_<gpus>xb<batch>-<iters>k_<dataset>-<h>x<w>, dataset one of "
            f"{', '.join(MMSEG_DATASETS)}). Names: {', '.join(MMSEG_CONFIGS)}.")
    depth, dataset, height, width = match.groups()
    data_preset, num_classes, scale = MMSEG_DATASETS[dataset]
    crop = (int(height), int(width))
    if crop == SLIDE_CROP:
        protocol = EvaluationProtocol(SLIDE_SCALE, SLIDE_CROP, SLIDE_STRIDE, align_corners=True)
    else:
        protocol = EvaluationProtocol(scale)
    return data_preset, num_classes, f"resnet{depth}", crop, protocol


def preset_spec(name):
    """The catalogue entry `name`; an unknown name lists the catalogue."""
    if name not in MMSEG_CONFIGS:
        raise ValueError(f"No preset {name!r}. Named presets: {', '.join(MMSEG_CONFIGS)}; "
                       "or pass a preset directory.")
    path, miou, miou_ms = MMSEG_CONFIGS[name]
    data_preset, num_classes, backbone, crop, protocol = mmseg_protocol(name)
    return PresetSpec(name, MMSEG_URL + path, path[-12:-4], "mmseg", data_preset, num_classes,
                      backbone, crop, protocol, miou, miou_ms)


def config_of_checkpoint(file_name):
    """The config name of a released checkpoint's file name, or `None`."""
    return next((name for name, (path, _, _) in MMSEG_CONFIGS.items()
                 if path.endswith("/" + file_name)), None)


def catalogue():
    """Every named preset, in the catalogue's order."""
    return [preset_spec(name) for name in MMSEG_CONFIGS]
