"""mmsegmentation DANet checkpoints against mmsegmentation itself
(danet_tf/testing/mmseg_reference.py builds its EncoderDecoder from the
released config files)."""

import numpy as np
import pytest

from danet_tf import DANet
from danet_tf.models.preset_catalog import MMSEG_CONFIGS
from danet_tf.models.weights import WeightConversionError, load_mmseg_danet, mmseg_architecture
from danet_tf.testing.mmseg_reference import (
    REFERENCE_CONFIGS,
    build_mmseg_danet,
    compare_conversion,
)

pytestmark = pytest.mark.slow


def _state(module):
    return {k: v.numpy() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("name, size", REFERENCE_CONFIGS)
def test_converted_logits_equal_mmsegs(name, size):
    result, converted = compare_conversion(name, size, seed=len(name))
    assert converted == (316 if "r50" in name else 571)
    for key, (error, agreement) in result.items():
        assert error <= 1e-3 and agreement >= 0.999, (key, error, agreement)


@pytest.mark.backend_independent
def test_architecture_is_read_off_the_tensors():
    state = _state(build_mmseg_danet("danet_r101-d8_4xb4-80k_ade20k-512x512"))
    assert mmseg_architecture(state) == {"num_classes": 150, "backbone": "resnet101",
                                         "deep_stem": True, "aux_head": True}
    with pytest.raises(WeightConversionError, match="not an mmseg DANet"):
        mmseg_architecture({k: v for k, v in state.items() if not k.startswith("decode_head.")})


@pytest.mark.backend_independent
def test_every_released_config_converts_with_nothing_missing_or_unexpected():
    """All 16 configs: their exact names and shapes, from mmseg's own model."""
    models = {}
    for name in MMSEG_CONFIGS:
        state = _state(build_mmseg_danet(name))
        arch = mmseg_architecture(state)
        key = tuple(sorted(arch.items()))
        if key not in models:
            models[key] = DANet(**arch)
        names = load_mmseg_danet(models[key], state)
        assert len(names) == (316 if arch["backbone"] == "resnet50" else 571), name
    assert len(MMSEG_CONFIGS) == 16 and len(models) == 6


@pytest.mark.backend_independent
def test_mismatches_are_listed():
    state = _state(build_mmseg_danet("danet_r50-d8_4xb2-40k_cityscapes-512x1024"))
    del state["decode_head.pam.gamma.scale"]
    state["decode_head.extra.weight"] = np.zeros(3, np.float32)
    state["decode_head.conv_seg.weight"] = np.zeros((7, 512, 1, 1), np.float32)
    with pytest.raises(WeightConversionError) as info:
        load_mmseg_danet(DANet(19, backbone="resnet50", deep_stem=True, aux_head=True), state)
    message = str(info.value)
    assert "1 missing: decode_head.pam.gamma.scale" in message
    assert "1 unexpected: decode_head.extra.weight" in message
    assert "decode_head.conv_seg.weight: checkpoint (7, 512, 1, 1)" in message


@pytest.mark.backend_independent
def test_the_catalogue_is_mmsegs_metafile_and_configs():
    """Names, URLs and scores from configs/danet/metafile.yaml; dataset,
    classes, crop and test protocol from each config file."""
    import os

    import yaml
    from mmengine import Config

    from danet_tf.models.preset_catalog import catalogue
    from danet_tf.testing.mmseg_reference import config_path

    path = os.path.join(os.path.dirname(config_path(next(iter(MMSEG_CONFIGS)))), "metafile.yaml")
    with open(path) as f:
        models = {m["Name"]: m for m in yaml.safe_load(f)["Models"]}
    assert sorted(models) == sorted(MMSEG_CONFIGS)
    for spec in catalogue():
        entry, config = models[spec.name], Config.fromfile(config_path(spec.name))
        results = entry["Results"]  # a mapping, or a list of them
        metrics = (results[0] if isinstance(results, list) else results)["Metrics"]
        assert spec.url == entry["Weights"] and spec.url.endswith(f"-{spec.sha256_prefix}.pth")
        assert (spec.miou, spec.miou_ms_flip) == (metrics["mIoU"], metrics.get("mIoU(ms+flip)"))
        model = config.model
        assert spec.num_classes == model.decode_head.num_classes
        assert spec.backbone == f"resnet{model.backbone.depth}"
        assert spec.crop_size == tuple(config.crop_size)
        assert spec.protocol.align_corners == model.decode_head.align_corners
        resize = next(t for t in config.test_pipeline if t["type"] == "Resize")
        assert resize["keep_ratio"] and spec.protocol.scale == tuple(resize["scale"])
        test_cfg = model.test_cfg
        if test_cfg["mode"] == "slide":
            assert (spec.protocol.crop, spec.protocol.stride) == (
                tuple(test_cfg["crop_size"]), tuple(test_cfg["stride"]))
        else:
            assert test_cfg["mode"] == "whole" and spec.protocol.crop is None
