"""mmsegmentation's own DANet, built from its released config files: the
independent reference of the mmseg conversion tests.

mmsegmentation 1.2.2 installs from the registry with `mmengine` and
`mmcv-lite` (no compiled ops). `import mmseg` reaches `mmcv.ops`, which
mmcv-lite lacks; DANet uses none of it, so a stand-in module whose every
name is a class that refuses to be built goes into `sys.modules` first.
"""

import importlib.machinery
import os
import sys
import types


class _CompiledOpMissing:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("mmcv-lite has no compiled ops (mmcv.ops); DANet uses none")


def _stub_mmcv_ops():
    if "mmcv.ops" in sys.modules:
        return
    import mmcv  # noqa: F401  (the package the stand-in module joins)

    ops = types.ModuleType("mmcv.ops")
    ops.__spec__ = importlib.machinery.ModuleSpec("mmcv.ops", None)

    def __getattr__(name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _CompiledOpMissing

    ops.__getattr__ = __getattr__
    sys.modules["mmcv.ops"] = ops


def import_mmseg():
    """The `mmseg` package with its modules registered."""
    _stub_mmcv_ops()
    import mmseg
    from mmseg.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    return mmseg


def config_path(name):
    """Path of a released mmseg config (`configs/danet/<name>.py`) shipped in
    the package."""
    mmseg = import_mmseg()
    path = os.path.join(os.path.dirname(mmseg.__file__), ".mim", "configs", "danet",
                        f"{name}.py")
    if not os.path.isfile(path):
        raise FileNotFoundError(path)
    return path


def build_mmseg_danet(name, **backbone_overrides):
    """mmseg's `EncoderDecoder` of config `name`, in eval mode, plain BN
    (the configs' SyncBN needs a process group) and no pretrained weights."""
    import_mmseg()
    from mmengine import Config
    from mmseg.registry import MODELS

    config = Config.fromfile(config_path(name))
    model_config = config.model
    model_config.pop("data_preprocessor", None)
    model_config.pretrained = None
    model_config.backbone.init_cfg = None
    model_config.backbone.update(backbone_overrides)
    for part in (model_config.backbone, model_config.decode_head, model_config.auxiliary_head):
        if "norm_cfg" in part:
            part.norm_cfg = {"type": "BN", "requires_grad": True}
    return MODELS.build(model_config).eval()


def mmseg_checkpoint(model, path, meta=None):
    """Writes a Keras DANet's weights as an mmseg checkpoint file
    (`{"meta", "state_dict"}`, mmseg's names and PyTorch's layouts): data for
    the download and conversion tests that needs no mmseg."""
    import keras
    import numpy as np
    import torch

    from danet_tf.models.weights import mmseg_targets

    state = {}
    for name, (variable, transform) in mmseg_targets(model).items():
        value = keras.ops.convert_to_numpy(variable)
        if transform is not None:  # Keras (kh, kw, in, out) -> PyTorch (out, in, kh, kw)
            value = np.transpose(value, (3, 2, 0, 1))
        elif name.endswith("gamma.scale"):
            value = value.reshape(())  # mmcv's Scale holds a 0-dim tensor
        state[name] = torch.from_numpy(np.ascontiguousarray(value))
    torch.save({"meta": meta or {}, "state_dict": state}, path)
    return path


def mmseg_outputs(model, images):
    """mmseg's fused logits (`encode_decode`, resized with the config's
    align_corners), and the position branch's, the channel branch's
    (`DAHead.forward`) and the FCN auxiliary head's resized the same way,
    NHWC, for NHWC float32 `images`."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.transpose(images, (0, 3, 1, 2)))
    size = images.shape[1:3]
    def resized(logits):
        logits = F.interpolate(logits, size=size, mode="bilinear",
                               align_corners=model.align_corners)
        return logits.permute(0, 2, 3, 1).numpy()

    with torch.no_grad():
        logits = model.encode_decode(x, [{"img_shape": size, "ori_shape": size}])
        features = model.extract_feat(x)
        _, pam, cam = model.decode_head(features)
        aux = model.auxiliary_head(features)
    return {"logits": logits.permute(0, 2, 3, 1).numpy(), "pam_logits": resized(pam),
            "cam_logits": resized(cam), "aux_logits": resized(aux)}


def compare_conversion(name, size, seed=0):
    """Converts config `name`'s mmseg model (random weights, non-zero BN
    statistics and gammas) and compares outputs on a random `size` image.

    Returns:
        `{output: (max |difference| / max |mmseg|, argmax agreement)}`, and
        the number of tensors converted.
    """
    import keras
    import numpy as np
    import torch

    from danet_tf.models.danet import DANet
    from danet_tf.models.weights import load_mmseg_danet, mmseg_architecture
    from danet_tf.testing.torch_danet import randomize

    reference = randomize(build_mmseg_danet(name), seed=seed)
    with torch.no_grad():  # distinct, non-zero gammas
        reference.decode_head.pam.gamma.scale.fill_(0.7)
        reference.decode_head.cam.gamma.scale.fill_(0.4)
    state = {k: v.numpy() for k, v in reference.state_dict().items()}
    model = DANet(**mmseg_architecture(state), align_corners=reference.align_corners)
    converted = load_mmseg_danet(model, state)
    images = np.random.default_rng(seed).normal(size=(1, *size, 3)).astype("float32")
    expected = mmseg_outputs(reference, images)
    got = model.predict(images, verbose=0)
    result = {}
    for key, want in expected.items():
        have = keras.ops.convert_to_numpy(got[key]).astype(np.float64)
        error = np.max(np.abs(have - want)) / np.max(np.abs(want))
        result[key] = (float(error), float(np.mean(have.argmax(-1) == want.argmax(-1))))
    return result, len(converted)


# 19, 150 and 21 classes; align_corners True (769x769) and
# False; odd, non-square inputs.
REFERENCE_CONFIGS = [
    ("danet_r50-d8_4xb2-40k_cityscapes-769x769", (57, 83)),
    ("danet_r101-d8_4xb4-80k_ade20k-512x512", (66, 49)),
    ("danet_r50-d8_4xb4-20k_voc12aug-512x512", (41, 70)),
]


def main():
    """Prints the comparison of `REFERENCE_CONFIGS` as a Markdown table."""
    print("| mmseg config | input | output | max abs diff / max abs logit | argmax agreement |")
    print("|---|---|---|---|---|")
    for name, size in REFERENCE_CONFIGS:
        result, _ = compare_conversion(name, size)
        for key, (error, agreement) in result.items():
            print(f"| {name} | {size[0]}x{size[1]} | {key} | {error:.1e} | "
                  f"{100 * agreement:.3f} % |")


if __name__ == "__main__":
    main()
