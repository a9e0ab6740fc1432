"""The CIFAR ResNets of He et al. (2016, §4.2): ResNet-20/32/44/56.

Three stages of ``n`` basic blocks with 16, 32 and 64 channels on 32x32 inputs,
depth ``6n + 2``. Shortcuts that change shape are parameter-free (option A of
the paper: subsample by 2 and zero-pad the new channels). ResNet-20 is the
CIFAR-10 source model of LEEP (Nguyen et al., 2020).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from transferlib.models.base import TransferModel, Unit

__all__ = ["CifarResNet", "resnet20"]


class _BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.stride = stride
        self.extra_channels = out_channels - in_channels

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra_channels:
            half = self.extra_channels // 2
            x = F.pad(x, (0, 0, 0, 0, half, self.extra_channels - half))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self._shortcut(x))


class CifarResNet(TransferModel):
    """CIFAR ResNet of depth ``6 * blocks_per_stage + 2``.

    Layers for :meth:`intermediate`: ``"stem"``, ``"layer1"``, ``"layer2"``,
    ``"layer3"`` (= ``features``, 64-d); cut points also name the blocks inside a stage
    (``"layer3.0"``, ``"layer3.1"``; ``"layer3"`` is the output of its last block). Works on
    any input size; 32 is the design size.
    """

    layers = ("stem", "layer1", "layer2", "layer3")
    mean = (0.4914, 0.4822, 0.4465)  # CIFAR-10 channel statistics
    std = (0.2470, 0.2435, 0.2616)

    def __init__(self, num_classes: int, blocks_per_stage: int = 3, width: int = 16) -> None:
        super().__init__()
        widths = (width, 2 * width, 4 * width)
        self.conv = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(widths[0])
        stages = []
        in_channels = widths[0]
        for index, out_channels in enumerate(widths):
            stride = 1 if index == 0 else 2
            blocks = [_BasicBlock(in_channels, out_channels, stride)]
            blocks += [
                _BasicBlock(out_channels, out_channels, 1) for _ in range(blocks_per_stage - 1)
            ]
            stages.append(nn.Sequential(*blocks))
            in_channels = out_channels
        self.stages = nn.ModuleList(stages)
        self.feature_dim = widths[-1]
        self.head = nn.Linear(self.feature_dim, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def _build_units(self) -> list[tuple[str, nn.Module]]:
        units: list[tuple[str, nn.Module]] = [("stem", Unit(_conv_bn_relu, self.conv, self.bn))]
        for name, stage in zip(self.layers[1:], self.stages):
            last = len(stage) - 1
            units += [
                (name if j == last else f"{name}.{j}", block) for j, block in enumerate(stage)
            ]
        return units


def _conv_bn_relu(x: torch.Tensor, conv: nn.Module, bn: nn.Module) -> torch.Tensor:
    return F.relu(bn(conv(x)))


def resnet20(num_classes: int, depth: int = 20, width: int = 16) -> CifarResNet:
    """ResNet-20 (or another ``depth = 6n + 2``: 32, 44, 56, 110)."""
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNet depth must be 6n + 2 with n >= 1, got {depth}")
    return CifarResNet(num_classes, blocks_per_stage=(depth - 2) // 6, width=width)
