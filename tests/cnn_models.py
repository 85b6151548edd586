"""Test architectures with torchvision's topology (torchvision cannot be installed here).

The small CNN and the CIFAR-10 VGG-16 of REFERENCE.md 6c, ResNet-18- and
ResNet-50-style networks (BasicBlock [2, 2, 2, 2] and Bottleneck [3, 4, 6, 3]
with 1x1-projection skips where the shape changes, as torchvision builds
them) and an Inception-style block (four branches concatenated). ``width``
scales every channel count (1 = the published widths) so that tests stay
fast; the topology does not change with it.
"""

from torch import nn


def small_cnn(in_channels: int = 1, n_classes: int = 10, width: float = 1.0) -> nn.Sequential:
    """conv64-conv64-pool-conv64-pool, 3x3 'same', then dense 128-10 (28x28 inputs)."""
    c = max(1, round(64 * width))
    return nn.Sequential(
        nn.Conv2d(in_channels, c, 3, padding=1), nn.ReLU(),
        nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(c * 7 * 7, 128), nn.ReLU(), nn.Linear(128, n_classes),
    )


VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def vgg16_cifar(n_classes: int = 10, width: float = 1.0, batch_norm: bool = True) -> nn.Sequential:
    """The 13 convs of VGG-16 (3x3, BatchNorm, ReLU, max-pools) for 32x32 inputs, one Linear head."""
    layers, prev = [], 3
    for v in VGG16:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
            continue
        c = max(1, round(v * width))
        layers.append(nn.Conv2d(prev, c, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(c))
        layers.append(nn.ReLU(inplace=True))
        prev = c
    layers += [nn.Flatten(), nn.Linear(prev, n_classes)]
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes * 4))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision's ResNet topology: 7x7/2 stem, max-pool, four stages, average pool, fc."""

    def __init__(self, block, layers, n_classes=1000, width=1.0):
        super().__init__()
        planes = [max(1, round(p * width)) for p in (64, 128, 256, 512)]
        self.inplanes = planes[0]
        self.conv1 = nn.Conv2d(3, self.inplanes, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._stage(block, planes[0], layers[0], 1)
        self.layer2 = self._stage(block, planes[1], layers[1], 2)
        self.layer3 = self._stage(block, planes[2], layers[2], 2)
        self.layer4 = self._stage(block, planes[3], layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(planes[3] * block.expansion, n_classes)

    def _stage(self, block, planes, blocks, stride):
        layers = [block(self.inplanes, planes, stride)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def resnet18(n_classes=1000, width=1.0):
    return ResNet(BasicBlock, (2, 2, 2, 2), n_classes, width)


def resnet50(n_classes=1000, width=1.0):
    return ResNet(Bottleneck, (3, 4, 6, 3), n_classes, width)


class InceptionBlock(nn.Module):
    """Four branches (1x1; 1x1 -> 3x3; 1x1 -> 5x5; 3x3 max-pool -> 1x1) concatenated on channels."""

    def __init__(self, in_channels=192, c1=64, c3=(96, 128), c5=(16, 32), pool=32):
        super().__init__()
        self.branch1 = nn.Sequential(nn.Conv2d(in_channels, c1, 1), nn.ReLU())
        self.branch3 = nn.Sequential(nn.Conv2d(in_channels, c3[0], 1), nn.ReLU(),
                                     nn.Conv2d(c3[0], c3[1], 3, padding=1), nn.ReLU())
        self.branch5 = nn.Sequential(nn.Conv2d(in_channels, c5[0], 1), nn.ReLU(),
                                     nn.Conv2d(c5[0], c5[1], 5, padding=2), nn.ReLU())
        self.branch_pool = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(in_channels, pool, 1), nn.ReLU())

    def forward(self, x):
        import torch

        return torch.cat([self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)], 1)
