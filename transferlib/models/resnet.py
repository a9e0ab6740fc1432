"""torchvision's ResNet-18 with the transferlib interface.

``small_input=True`` replaces the ImageNet stem (7x7 stride-2 convolution and a
max-pool, which shrink a 32x32 image to 8x8 before the first block) by a 3x3
stride-1 convolution without pooling, the usual adaptation for 32x32 images.
Tran et al. (2019) use ResNet-18 as the source network.
"""

from __future__ import annotations

from torch import nn
from torchvision.models import resnet18 as _tv_resnet18

from transferlib.models.base import TransferModel

__all__ = ["ResNet18"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ResNet18(TransferModel):
    """ResNet-18 (random initialisation; no weights are downloaded).

    Layers for :meth:`intermediate`: ``"stem"``, ``"layer1"`` ... ``"layer4"``
    (= ``features``, 512-d); cut points also name the first block of each stage
    (``"layer4.0"``).
    """

    layers = ("stem", "layer1", "layer2", "layer3", "layer4")
    mean = IMAGENET_MEAN
    std = IMAGENET_STD

    def __init__(self, num_classes: int, small_input: bool = True) -> None:
        super().__init__()
        net = _tv_resnet18(weights=None, num_classes=num_classes)
        if small_input:
            net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
            nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
            net.maxpool = nn.Identity()
        self.small_input = small_input
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.stages = nn.ModuleList([net.layer1, net.layer2, net.layer3, net.layer4])
        self.feature_dim = net.fc.in_features
        self.head = net.fc

    def _build_units(self) -> list[tuple[str, nn.Module]]:
        units: list[tuple[str, nn.Module]] = [("stem", self.stem)]
        for name, stage in zip(self.layers[1:], self.stages):
            last = len(stage) - 1
            units += [
                (name if j == last else f"{name}.{j}", block) for j, block in enumerate(stage)
            ]
        return units
