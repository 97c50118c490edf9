"""Weight conversion against an independent PyTorch DANet (danet_tf/testing/torch_danet.py)."""

import numpy as np
import pytest
import torch
from conftest import relative_error
from helpers import infer

from danet_tf import DANet
from danet_tf.models.backbone_weights import (
    load_keras_applications_backbone,
    load_torchvision_backbone,
)
from danet_tf.models.dilated_resnet import DilatedResNet
from danet_tf.models.weights import (
    WeightConversionError,
    load_official_danet,
    load_torch_state_dict,
)
from danet_tf.testing.torch_danet import DANet as TorchDANet
from danet_tf.testing.torch_danet import DilatedResNet as TorchResNet
from danet_tf.testing.torch_danet import randomize

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def torch_danet():
    return randomize(TorchDANet(num_classes=5, multi_grid=(1, 2, 4)))


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).normal(size=(1, 3, 50, 66)).astype("float32")


def _torch_outputs(model, images):
    with torch.no_grad():
        return [o.permute(0, 2, 3, 1).numpy() for o in model(torch.from_numpy(images))]


# How the checkpoint is wrapped is read by Python alone: the numerics of the
# other backends are checked on the plain checkpoint.
WRAPPINGS = ["plain"] + [pytest.param(w, marks=pytest.mark.backend_independent)
                         for w in ("state_dict", "module_prefix")]


@pytest.mark.parametrize("wrapping", WRAPPINGS)
def test_official_checkpoint_reproduces_pytorch(torch_danet, images, tmp_path, wrapping):
    state = torch_danet.state_dict()
    if wrapping == "state_dict":
        payload = {"epoch": 3, "state_dict": state, "best_pred": 0.5}
    elif wrapping == "module_prefix":
        payload = {f"module.{k}": v for k, v in state.items() if not k.startswith("pretrained.fc")}
    else:
        payload = state
    path = tmp_path / "danet.pth.tar"
    torch.save(payload, path)
    model = DANet(5, backbone="resnet50", multi_grid=True)
    names = load_official_danet(model, load_torch_state_dict(str(path)))
    # 53 convs + 53 BN (x4) in ResNet-50; head: 4 convs + 4 BN (x4) + q/k/v (x2)
    # + 2 gammas + 3 classifiers (x2).
    assert len(names) == 53 + 53 * 4 + 4 + 16 + 6 + 2 + 6
    expected = _torch_outputs(torch_danet, images)
    got = infer(model, np.transpose(images, (0, 2, 3, 1)))
    for key, reference in zip(("logits", "pam_logits", "cam_logits"), expected):
        assert relative_error(got[key], reference) <= 1e-4, key


@pytest.mark.backend_independent
def test_mismatches_are_listed(torch_danet):
    state = {k: v.numpy() for k, v in torch_danet.state_dict().items()}
    del state["head.sa.gamma"]
    state["head.extra.weight"] = np.zeros(3, np.float32)
    state["head.conv6.1.weight"] = np.zeros((7, 512, 1, 1), np.float32)
    with pytest.raises(WeightConversionError) as info:
        load_official_danet(DANet(5, backbone="resnet50", multi_grid=True), state)
    message = str(info.value)
    assert "1 missing: head.sa.gamma" in message
    assert "1 unexpected: head.extra.weight" in message
    assert "head.conv6.1.weight: checkpoint (7, 512, 1, 1)" in message


@pytest.mark.backend_independent
def test_wrong_depth_is_refused(torch_danet):
    state = {k: v.numpy() for k, v in torch_danet.state_dict().items()}
    with pytest.raises(WeightConversionError, match="missing"):
        load_official_danet(DANet(5, backbone="resnet101", multi_grid=True), state)


def test_torchvision_backbone(images, tmp_path):
    reference = randomize(TorchResNet((3, 4, 6, 3), output_stride=8), seed=1)
    torch.save(reference.state_dict(), tmp_path / "resnet50.pth")
    backbone = DilatedResNet(50, output_stride=8)
    load_torchvision_backbone(backbone, load_torch_state_dict(str(tmp_path / "resnet50.pth")))
    with torch.no_grad():
        expected = reference(torch.from_numpy(images))[3].permute(0, 2, 3, 1).numpy()
    got = infer(backbone, np.transpose(images, (0, 2, 3, 1)))["layer4"]
    assert relative_error(got, expected) <= 1e-4


def test_keras_applications_backbone_offline():
    import keras

    application = keras.applications.ResNet50(weights=None, include_top=False,
                                              input_shape=(None, None, 3))
    rng = np.random.default_rng(2)
    for layer in application.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.0, gamma.shape), rng.normal(0, 0.1, beta.shape),
                               rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 1.5, var.shape)])
    backbone = DilatedResNet(50, output_stride=32, layout="caffe")
    copied = load_keras_applications_backbone(backbone, application)
    assert len(copied) == 2 + 16 * 6 + 4 * 2
    x = rng.normal(size=(1, 67, 90, 3)).astype("float32")
    assert relative_error(infer(backbone, x)["layer4"], infer(application, x)) <= 1e-4
    # The caffe layout puts the stride on the first 1x1 conv.
    assert backbone.get_layer("layer2_0_conv1").strides == (2, 2)
    assert backbone.get_layer("layer2_0_conv2").strides == (1, 1)


@pytest.mark.backend_independent
def test_an_official_checkpoint_refuses_another_head():
    from danet_tf.models.weights import load_official_danet

    with pytest.raises(ValueError, match="head=danet model"):
        load_official_danet(DANet(num_classes=3, backbone="resnet18", head="psp"), {})
