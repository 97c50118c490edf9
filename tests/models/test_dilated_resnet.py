import math

import keras
import numpy as np
import pytest
from helpers import infer

from danet_tf.models.dilated_resnet import DilatedResNet


def _trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.fixture(scope="module")
def resnet50_os8():
    return DilatedResNet(50, output_stride=8)


def expected_size(size, output_stride):
    """PyTorch arithmetic: stem conv /2, pool /2, then ceil-halving per strided stage."""
    size = math.floor((size + 2 * 3 - 7) / 2) + 1
    size = math.floor((size + 2 - 3) / 2) + 1
    sizes = [size]
    for stride in {8: (2, 1, 1), 16: (2, 2, 1), 32: (2, 2, 2)}[output_stride]:
        size = math.floor((size + 2 - 3) / stride) + 1
        sizes.append(size)
    return sizes


@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_feature_shapes_for_odd_input(output_stride, resnet50_os8):
    model = resnet50_os8 if output_stride == 8 else DilatedResNet(50, output_stride=output_stride)
    features = infer(model, np.zeros((1, 97, 129, 3), "float32"))
    hs, ws = expected_size(97, output_stride), expected_size(129, output_stride)
    for i, (name, channels) in enumerate(
        [("layer1", 256), ("layer2", 512), ("layer3", 1024), ("layer4", 2048)]
    ):
        assert tuple(features[name].shape) == (1, hs[i], ws[i], channels), name
    # Output stride 8 on 97x129: 13x17, as torchvision's dilated ResNet gives.
    if output_stride == 8:
        assert tuple(features["layer4"].shape[1:3]) == (13, 17)


@pytest.mark.backend_independent
def test_resnet50_parameter_count_equals_torchvision(resnet50_os8):
    assert _trainable_count(resnet50_os8) == 23_508_032


@pytest.mark.backend_independent
def test_resnet101_parameter_count_equals_torchvision():
    assert _trainable_count(DilatedResNet(101)) == 42_500_160


def _dilations(model, stage):
    return [
        model.get_layer(f"layer{stage}_{b}_conv2").dilation_rate[0]
        for b in range(100)
        if f"layer{stage}_{b}_conv2" in {layer.name for layer in model.layers}
    ]


@pytest.mark.backend_independent
def test_official_dilation_pattern(resnet50_os8):
    assert _dilations(resnet50_os8, 3) == [1, 2, 2, 2, 2, 2]
    assert _dilations(resnet50_os8, 4) == [2, 4, 4]
    assert resnet50_os8.get_layer("layer3_0_conv2").strides == (1, 1)
    assert resnet50_os8.get_layer("layer2_0_conv2").strides == (2, 2)
    # Stride on the 3x3 conv (torchvision), not on the first 1x1.
    assert resnet50_os8.get_layer("layer2_0_conv1").strides == (1, 1)


@pytest.mark.backend_independent
def test_multi_grid_and_output_stride_16():
    model = DilatedResNet(50, output_stride=8, multi_grid=(1, 2, 4))
    assert _dilations(model, 4) == [4, 8, 16]
    model16 = DilatedResNet(50, output_stride=16)
    assert _dilations(model16, 3) == [1] * 6
    assert _dilations(model16, 4) == [1, 2, 2]


def test_bn_settings_and_deep_stem():
    model = DilatedResNet(50, deep_stem=True, synchronized_bn=True)
    bn = model.get_layer("stem_bn0")
    synchronized = keras.backend.backend() == "tensorflow"  # JAX batches are global anyway
    assert (bn.epsilon, bn.momentum, bn.synchronized) == (1e-5, 0.9, synchronized)
    # Deep stem: 3*32*9 + 32*32*9 + 32*64*9 conv weights replace 7*7*3*64, plus BN.
    delta = (3 * 32 + 32 * 32 + 32 * 64) * 9 + 2 * (32 + 32 + 64) - (7 * 7 * 3 * 64 + 2 * 64)
    assert _trainable_count(model) == 23_508_032 + delta


@pytest.mark.backend_independent
def test_bad_arguments():
    with pytest.raises(ValueError, match="output_stride"):
        DilatedResNet(50, output_stride=4)
    with pytest.raises(ValueError, match="depth"):
        DilatedResNet(26)


@pytest.mark.parametrize("depth, count", [(18, 11_176_512), (34, 21_284_672)])
def test_basic_block_resnets_match_torchvision(depth, count):
    model = DilatedResNet(depth, output_stride=8)
    assert _trainable_count(model) == count
    features = infer(model, np.zeros((1, 97, 129, 3), "float32"))
    assert tuple(features["layer4"].shape) == (1, 13, 17, 512)
    assert model.get_layer("layer4_1_conv1").dilation_rate == (4, 4)
    assert model.get_layer("layer4_0_conv1").dilation_rate == (2, 2)
