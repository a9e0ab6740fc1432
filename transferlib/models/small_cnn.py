"""A small, fast convolutional network for smoke runs and tests."""

from __future__ import annotations

from torch import nn

from transferlib.models.base import TransferModel

__all__ = ["SmallCNN"]


class SmallCNN(TransferModel):
    """Three conv-BN-ReLU blocks (each halving the resolution) and a linear head.

    Layers for :meth:`intermediate`: ``"block1"``, ``"block2"``, ``"block3"``
    (= ``features``, ``4 * width``-d).
    """

    layers = ("block1", "block2", "block3")

    def __init__(self, num_classes: int, width: int = 16) -> None:
        super().__init__()
        widths = (width, 2 * width, 4 * width)
        blocks, in_channels = [], 3
        for out_channels in widths:
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                    nn.BatchNorm2d(out_channels),
                    nn.ReLU(inplace=True),
                    nn.MaxPool2d(2),
                )
            )
            in_channels = out_channels
        self.blocks = nn.ModuleList(blocks)
        self.feature_dim = widths[-1]
        self.head = nn.Linear(self.feature_dim, num_classes)

    def _build_units(self) -> list[tuple[str, nn.Module]]:
        return list(zip(self.layers, self.blocks))
