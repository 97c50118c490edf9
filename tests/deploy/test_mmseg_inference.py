"""mmseg's test protocol against mmsegmentation itself: its `Resize`
(mmcv.imrescale), `EncoderDecoder.inference` (whole and slide) and
`postprocess_result`, on a converted model."""

import numpy as np
import pytest
import torch
from conftest import relative_error

from danet_tf import DANet
from danet_tf.deploy.loading import compiled_logits_fn
from danet_tf.deploy.mmseg_inference import MMSegSegmenter, rescaled_size, slide_windows
from danet_tf.models.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from danet_tf.models.weights import load_mmseg_danet, mmseg_architecture
from danet_tf.testing.mmseg_reference import build_mmseg_danet
from danet_tf.testing.torch_danet import randomize

pytestmark = pytest.mark.slow
CONFIG = "danet_r50-d8_4xb2-40k_cityscapes-769x769"  # align_corners=True


@pytest.fixture(scope="module")
def models():
    reference = randomize(build_mmseg_danet(CONFIG), seed=3)
    with torch.no_grad():
        reference.decode_head.pam.gamma.scale.fill_(0.6)
        reference.decode_head.cam.gamma.scale.fill_(0.3)
    state = {k: v.numpy() for k, v in reference.state_dict().items()}
    model = DANet(**mmseg_architecture(state), align_corners=reference.align_corners)
    load_mmseg_danet(model, state)
    return reference, model


def _mmseg_logits(reference, image, scale, test_cfg):
    """What mmseg's test pipeline and `predict` compute, NHWC at image size."""
    import mmcv
    from mmengine.config import ConfigDict
    from mmseg.structures import SegDataSample

    resized = mmcv.imrescale(image, scale, interpolation="bilinear", backend="cv2")
    mean, std = np.array(IMAGENET_MEAN) * 255, np.array(IMAGENET_STD) * 255
    x = torch.from_numpy(((resized - mean) / std).astype(np.float32).transpose(2, 0, 1)[None])
    reference.test_cfg = ConfigDict(test_cfg)
    meta = {"img_shape": resized.shape[:2], "ori_shape": image.shape[:2],
            "padding_size": [0, 0, 0, 0]}
    with torch.no_grad():
        logits = reference.inference(x, [meta])
        sample = reference.postprocess_result(logits, [SegDataSample(metainfo=meta)])[0]
    return sample.seg_logits.data.numpy().transpose(1, 2, 0), resized.shape[:2]


@pytest.mark.parametrize("mode", ["whole", "slide"])
@pytest.mark.parametrize("scale", [(120, 48), (90, 61)], ids=["resized", "kept"])
def test_the_protocol_reproduces_mmseg(models, mode, scale):
    """61x90 images; at scale (120, 48) resized to 48x71 first, at (90, 61) kept."""
    reference, model = models
    image = np.random.default_rng(0).integers(0, 256, (61, 90, 3), dtype=np.uint8)
    crop, stride = ((33, 41), (22, 27)) if mode == "slide" else (None, None)
    test_cfg = {"mode": mode, "crop_size": crop, "stride": stride} if crop else {"mode": mode}
    expected, resized = _mmseg_logits(reference, image, scale, test_cfg)
    assert rescaled_size(61, 90, scale) == resized
    segmenter = MMSegSegmenter(compiled_logits_fn(model.inference_model()), scale, crop,
                               stride, align_corners=True, batch_size=3)
    got = segmenter.scores(image)
    if resized == (61, 90):
        assert relative_error(got, expected) <= 1e-4
    else:
        # cv2 rounds its bilinear resize in fixed point: some pixels of the
        # resized image differ by one grey level from the float resize
        # rounded (test_the_image_resize_is_mmcvs), so 1e-2 here.
        assert relative_error(got, expected) <= 1e-2
    assert np.mean(np.argmax(got, -1) == np.argmax(expected, -1)) >= 0.99


def test_the_image_resize_is_mmcvs():
    import mmcv

    from danet_tf.deploy.mmseg_inference import rescale_image

    image = np.random.default_rng(1).integers(0, 256, (61, 90, 3), dtype=np.uint8)
    for scale in ((120, 48), (300, 200)):
        expected = mmcv.imrescale(image, scale, interpolation="bilinear", backend="cv2")
        got = rescale_image(image, scale)
        assert got.shape == expected.shape and got.dtype == np.uint8
        assert np.abs(got.astype(int) - expected).max() <= 1
        assert np.mean(got == expected) >= 0.8  # 0.87 measured at (120, 48)


def test_windows_are_mmsegs():
    # 769 windows every 513 over a 1025 x 2049 image: 2 rows, 4 columns, the
    # last of each moved back to end at the border.
    windows = slide_windows(1025, 2049, (769, 769), (513, 513))
    assert len(windows) == 8
    assert windows[0] == (0, 769, 0, 769) and windows[3] == (0, 769, 1280, 2049)
    assert windows[-1] == (256, 1025, 1280, 2049)
    assert slide_windows(300, 400, (769, 769), (513, 513)) == [(0, 300, 0, 400)]
    assert rescaled_size(1024, 2048, (2048, 1024)) == (1024, 2048)
    assert rescaled_size(375, 500, (2048, 512)) == (512, 683)
