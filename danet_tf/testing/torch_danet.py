"""A PyTorch DANet written from the official formulas: the independent reference of
the weight-conversion tests and of the benchmarks next to the official model.

Module and parameter names follow junfu1115/DANet (fc0e063): the backbone is
`pretrained` (torchvision-layout dilated ResNet), the head `head` with
`conv5a/conv5c/sa/sc/conv51/conv52/conv6/conv7/conv8`.
"""

import torch
import torch.nn.functional as F
from torch import nn


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, dilation=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=dilation, dilation=dilation,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + identity)


class DilatedResNet(nn.Module):
    """Output stride 8: layer3 dilation 2 (first block 1), layer4 dilation 4 (first 2)."""

    def __init__(self, layers=(3, 4, 6, 3), output_stride=8, multi_grid=None):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        plans = {8: [(1, 1, 1), (2, 1, 1), (1, 1, 2), (1, 2, 4)],
                 32: [(1, 1, 1), (2, 1, 1), (2, 1, 1), (2, 1, 1)]}[output_stride]
        for i, (blocks, planes, (stride, first, dilation)) in enumerate(
                zip(layers, (64, 128, 256, 512), plans), start=1):
            dilations = [first] + [dilation] * (blocks - 1)
            if i == 4 and multi_grid:
                dilations = [dilation * g for g in multi_grid]
            setattr(self, f"layer{i}", self._make_layer(planes, blocks, stride, dilations))
        self.fc = nn.Linear(2048, 1000)

    def _make_layer(self, planes, blocks, stride, dilations):
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes * 4))
        layers = [Bottleneck(self.inplanes, planes, stride, dilations[0], downsample)]
        self.inplanes = planes * 4
        layers += [Bottleneck(self.inplanes, planes, 1, d) for d in dilations[1:]]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        c1 = self.layer1(x)
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        return c1, c2, c3, self.layer4(c3)


class PAM(nn.Module):
    def __init__(self, in_dim):
        super().__init__()
        self.query_conv = nn.Conv2d(in_dim, in_dim // 8, 1)
        self.key_conv = nn.Conv2d(in_dim, in_dim // 8, 1)
        self.value_conv = nn.Conv2d(in_dim, in_dim, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        b, c, h, w = x.size()
        query = self.query_conv(x).view(b, -1, w * h).permute(0, 2, 1)
        key = self.key_conv(x).view(b, -1, w * h)
        attention = F.softmax(torch.bmm(query, key), dim=-1)
        value = self.value_conv(x).view(b, -1, w * h)
        out = torch.bmm(value, attention.permute(0, 2, 1)).view(b, c, h, w)
        return self.gamma * out + x


class CAM(nn.Module):
    def __init__(self):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        b, c, h, w = x.size()
        query = x.view(b, c, -1)
        energy = torch.bmm(query, query.permute(0, 2, 1))
        energy_new = torch.max(energy, -1, keepdim=True)[0].expand_as(energy) - energy
        attention = F.softmax(energy_new, dim=-1)
        out = torch.bmm(attention, x.view(b, c, -1)).view(b, c, h, w)
        return self.gamma * out + x


def _conv_bn_relu(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU())


class DANetHead(nn.Module):
    def __init__(self, in_channels, num_classes):
        super().__init__()
        inter = in_channels // 4
        self.conv5a = _conv_bn_relu(in_channels, inter)
        self.conv5c = _conv_bn_relu(in_channels, inter)
        self.sa = PAM(inter)
        self.sc = CAM()
        self.conv51 = _conv_bn_relu(inter, inter)
        self.conv52 = _conv_bn_relu(inter, inter)
        for name in ("conv6", "conv7", "conv8"):
            setattr(self, name, nn.Sequential(nn.Dropout2d(0.1), nn.Conv2d(inter, num_classes, 1)))

    def forward(self, x):
        sa_conv = self.conv51(self.sa(self.conv5a(x)))
        sc_conv = self.conv52(self.sc(self.conv5c(x)))
        return self.conv8(sa_conv + sc_conv), self.conv6(sa_conv), self.conv7(sc_conv)


class DANet(nn.Module):
    def __init__(self, num_classes, layers=(3, 4, 6, 3), multi_grid=None):
        super().__init__()
        self.pretrained = DilatedResNet(layers, 8, multi_grid)
        self.head = DANetHead(2048, num_classes)

    def forward(self, x):
        size = x.shape[2:]
        outputs = self.head(self.pretrained(x)[3])
        return [F.interpolate(o, size, mode="bilinear", align_corners=True) for o in outputs]


def randomize(module, seed=0):
    """Random weights, biases, BN statistics and non-zero gammas."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif name.endswith("running_mean"):
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1)
            elif name.endswith(("gamma", "gamma.scale")):  # official, mmseg (0-dim)
                tensor.fill_(0.5)
            elif tensor.dim() == 1:
                tensor.copy_(torch.rand(tensor.shape, generator=generator) * 0.5 + 0.5
                             if name.endswith("weight") else
                             torch.randn(tensor.shape, generator=generator) * 0.1)
            else:
                fan_in = tensor[0].numel()
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
    return module.eval()
