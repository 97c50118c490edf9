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
