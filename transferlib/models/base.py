"""The interface every transferlib network shares.

Transfer experiments need the same cut through every network: the penultimate
representation (``features``), the last linear layer (``head``) and, for the
layer-wise H-score experiment, globally pooled activations at several depths
(``intermediate``). Subclasses only describe their layers, in depth order, in
:meth:`TransferModel._feature_maps`; everything else is defined here once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch import nn

__all__ = ["TransferModel"]


class TransferModel(nn.Module):
    """Base class: ``forward(x) = head(dropout(features(x)))``.

    Attributes
    ----------
    head : nn.Linear
        The classifier on top of the penultimate representation.
    feature_dim : int
        Width of ``features(x)``.
    input_size : int or None
        Side length the network expects; :func:`transferlib.models.preprocess`
        resizes images to it. ``None`` means "any size".
    mean, std : tuple of three floats
        Per-channel normalisation applied to images scaled to [0, 1].
    layers : tuple of str
        Names accepted by :meth:`intermediate`, shallow to deep; the last one
        is the penultimate representation.
    """

    head: nn.Linear
    feature_dim: int
    input_size: int | None = None
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.25, 0.25, 0.25)
    layers: tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        self.dropout: nn.Module = nn.Identity()

    def _feature_maps(self, x: torch.Tensor) -> Iterator[tuple[str, torch.Tensor]]:
        """Yield ``(layer name, activation map (B, C, H, W))`` in depth order."""
        raise NotImplementedError

    def pooled(self, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        """Globally average-pooled activations ``(B, C_layer)`` at several layers.

        One forward pass, stopped after the deepest requested layer.
        """
        wanted = list(dict.fromkeys(layers))
        unknown = [name for name in wanted if name not in self.layers]
        if unknown:
            raise ValueError(
                f"unknown layer(s) {unknown} for {type(self).__name__}; choose from {self.layers}"
            )
        out: dict[str, torch.Tensor] = {}
        for name, fmap in self._feature_maps(x):
            if name in wanted:
                out[name] = fmap.mean(dim=(2, 3))
                if len(out) == len(wanted):
                    break
        return out

    def intermediate(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        """Pooled activations ``(B, C_layer)`` after ``layer`` (one of :attr:`layers`)."""
        return self.pooled(x, [layer])[layer]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate representation ``(B, feature_dim)``."""
        return self.intermediate(x, self.layers[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))

    def backbone_parameters(self) -> list[nn.Parameter]:
        """Every trainable parameter except the head's (for per-group learning rates)."""
        head_ids = {id(p) for p in self.head.parameters()}
        return [p for p in self.parameters() if id(p) not in head_ids]

    def replace_head(self, num_classes: int) -> nn.Linear:
        """Put a freshly initialised ``feature_dim -> num_classes`` head in place."""
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        device = next(self.parameters()).device
        self.head = nn.Linear(self.feature_dim, num_classes).to(device)
        return self.head
