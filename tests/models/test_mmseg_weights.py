"""mmsegmentation DANet checkpoints against mmsegmentation itself
(danet_tf/testing/mmseg_reference.py builds its EncoderDecoder from the
released config files)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import relative_error
from helpers import infer

from danet_tf import DANet
from danet_tf.models.preset_catalog import MMSEG_CONFIGS
from danet_tf.models.weights import WeightConversionError, load_mmseg_danet, mmseg_architecture
from danet_tf.testing.mmseg_reference import build_mmseg_danet
from danet_tf.testing.torch_danet import randomize

pytestmark = pytest.mark.slow


def _state(module):
    return {k: v.numpy() for k, v in module.state_dict().items()}


def _mmseg_outputs(model, images):
    """mmseg's fused logits (`encode_decode`, resized with the config's
    align_corners) and its FCN auxiliary head resized the same way, NHWC."""
    x = torch.from_numpy(np.transpose(images, (0, 3, 1, 2)))
    size = images.shape[1:3]
    with torch.no_grad():
        logits = model.encode_decode(x, [{"img_shape": size, "ori_shape": size}])
        aux = F.interpolate(model.auxiliary_head(model.extract_feat(x)), size=size,
                            mode="bilinear", align_corners=model.align_corners)
    return logits.permute(0, 2, 3, 1).numpy(), aux.permute(0, 2, 3, 1).numpy()


# 19, 150 and 21 classes; align_corners True (769x769) and False.
REFERENCE_CONFIGS = [
    ("danet_r50-d8_4xb2-40k_cityscapes-769x769", (57, 83)),
    ("danet_r101-d8_4xb4-80k_ade20k-512x512", (66, 49)),
    ("danet_r50-d8_4xb4-20k_voc12aug-512x512", (41, 70)),
]


@pytest.mark.parametrize("name, size", REFERENCE_CONFIGS)
def test_converted_logits_equal_mmsegs(name, size):
    reference = randomize(build_mmseg_danet(name), seed=len(name))
    with torch.no_grad():  # distinct, non-zero gammas
        reference.decode_head.pam.gamma.scale.fill_(0.7)
        reference.decode_head.cam.gamma.scale.fill_(0.4)
    state = _state(reference)
    model = DANet(**mmseg_architecture(state), align_corners=reference.align_corners)
    names = load_mmseg_danet(model, state)
    assert len(names) == len([k for k in state if not k.endswith("num_batches_tracked")])
    images = np.random.default_rng(1).normal(size=(1, *size, 3)).astype("float32")
    logits, aux = _mmseg_outputs(reference, images)
    got = infer(model, images)
    for key, expected in (("logits", logits), ("aux_logits", aux)):
        assert relative_error(got[key], expected) <= 1e-3, key
        agreement = np.mean(np.argmax(got[key], -1) == np.argmax(expected, -1))
        assert agreement >= 0.999, (key, agreement)


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
