"""The interface every transferlib network shares.

Transfer experiments need the same cut through every network: the penultimate
representation (``features``), the last linear layer (``head``) and, for the
layer-wise H-score experiment, globally pooled activations at several depths
(``intermediate``). Partial fine-tuning and meta-transfer also need to run a network
*from* a depth: :meth:`TransferModel.activation` returns the (unpooled) activation map
after a named unit, and :meth:`TransferModel.forward_from` continues the forward pass from
such a map. Subclasses only describe their units, in depth order, in
:meth:`TransferModel._build_units`; everything else is defined here once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn

__all__ = ["TransferModel", "Unit"]


class Unit(nn.Module):
    """One step of a network's forward pass: ``forward(x, *modules, **constants)``.

    ``forward`` is a plain function (not a closure or bound method), so that a deep copy of a
    unit calls the *copied* modules.
    """

    def __init__(self, forward: Callable[..., torch.Tensor], *modules: nn.Module, **constants: Any):
        super().__init__()
        self.parts = nn.ModuleList(modules)
        self.step = forward
        self.constants = constants

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.step(x, *self.parts, **self.constants)


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
    cut_points : tuple of str
        Every unit of the forward pass (:attr:`layers` and the blocks between them, e.g.
        ``"layer3.1"`` for the second block of a three-block stage ``"layer3"``): where
        :meth:`activation` can read and :meth:`forward_from` can resume.
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

    def _build_units(self) -> list[tuple[str, nn.Module]]:
        """The forward pass up to the penultimate activation map as named units, in depth order.

        Applying the units in turn to a preprocessed input gives every activation map; the names
        of :attr:`layers` are among the unit names.
        """
        raise NotImplementedError

    @property
    def units(self) -> tuple[tuple[str, nn.Module], ...]:
        """The named units of :meth:`_build_units` (built once, then reused)."""
        cached = self.__dict__.get("_unit_list")
        if cached is None:
            cached = tuple(self._build_units())
            self.__dict__["_unit_list"] = cached
        return cached

    @property
    def cut_points(self) -> tuple[str, ...]:
        """Names of every unit, shallow to deep (see the class docstring)."""
        return tuple(name for name, _ in self.units)

    def _check_cut(self, layer: str) -> None:
        if layer not in self.cut_points:
            raise ValueError(
                f"unknown layer {layer!r} for {type(self).__name__}; choose from {self.cut_points}"
            )

    def _feature_maps(self, x: torch.Tensor) -> Iterator[tuple[str, torch.Tensor]]:
        """Yield ``(unit name, activation map (B, C, H, W))`` in depth order."""
        for name, unit in self.units:
            x = unit(x)
            yield name, x

    def units_after(self, layer: str | None) -> list[tuple[str, nn.Module]]:
        """The units that follow ``layer`` (every unit for ``None``)."""
        if layer is None:
            return list(self.units)
        self._check_cut(layer)
        return list(self.units[self.cut_points.index(layer) + 1 :])

    def top_parameters(self, layer: str | None) -> list[nn.Parameter]:
        """Parameters of the units after ``layer`` and of the head: what a fine-tuning that
        freezes everything up to ``layer`` trains (every parameter for ``None``)."""
        if layer is None:
            return list(self.parameters())
        params = [p for _, unit in self.units_after(layer) for p in unit.parameters()]
        return list(dict.fromkeys(params + list(self.head.parameters())))

    def activation(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        """The activation map ``(B, C, H, W)`` after unit ``layer``; the pass stops there."""
        self._check_cut(layer)
        for name, fmap in self._feature_maps(x):
            if name == layer:
                return fmap
        raise AssertionError("unreachable: every cut point is a unit")

    def features_from(self, layer: str | None, activation: torch.Tensor) -> torch.Tensor:
        """Penultimate representation computed from the activation map after ``layer``.

        ``layer=None`` means ``activation`` is the preprocessed input (the whole network runs).
        """
        x = activation
        for _, unit in self.units_after(layer):
            x = unit(x)
        return x.mean(dim=(2, 3))

    def forward_from(self, layer: str | None, activation: torch.Tensor) -> torch.Tensor:
        """Logits computed from the activation map after ``layer``: with ``activation =
        self.activation(x, layer)``, ``forward_from(layer, activation) == forward(x)``."""
        return self.head(self.dropout(self.features_from(layer, activation)))

    def pooled(self, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        """Globally average-pooled activations ``(B, C_layer)`` at several layers.

        One forward pass, stopped after the deepest requested layer. Any of
        :attr:`cut_points` is accepted.
        """
        wanted = list(dict.fromkeys(layers))
        unknown = [name for name in wanted if name not in self.cut_points]
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
