"""Typed presets shared by every chapter, scale overrides, and named random streams.

A chapter defines **one** frozen dataclass of its settings (deriving from :class:`Preset`), built
from the shared parts below (:class:`DataSpec`, :class:`TrainingSpec`), writes its book preset
once and derives the other scales with :func:`scaled`, which only accepts fields that exist::

    PRESETS = scaled(BOOK, smoke={"training": {"epochs": 1}}, full={"n_tasks": 200})

Scales change sizes and counts, never the code path. Field types are checked when a preset is
built, so ``epochs="10"`` or a misspelled override fails at import time, not in the middle of a
sweep.

Random numbers come from *named streams* (:func:`rng`, :func:`stream_seed`): a stream is the run's
seed plus names (``rng(seed, "nce", "test-subsample")``), hashed into a
:class:`numpy.random.SeedSequence`. Different names give independent streams for every seed, which
``seed + 1`` does not (seed 0's second stream would be seed 1's first).
"""

from __future__ import annotations

import dataclasses
import hashlib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from typing_extensions import Self

from transferlib.config import SCALES

__all__ = [
    "GLYPHS",
    "DataSpec",
    "Preset",
    "TrainingSpec",
    "rng",
    "scaled",
    "stream_seed",
]

P = TypeVar("P", bound="Preset")


def _matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits the type hint (the subset of typing that presets use)."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return len(args) == len(value) and all(_matches(v, a) for v, a in zip(value, args))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, origin or hint)


@dataclass(frozen=True)
class Preset:
    """Base of every preset: checks the type of each field when an instance is built."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not _matches(value, hints[field.name]):
                raise TypeError(
                    f"{type(self).__name__}.{field.name} must be {hints[field.name]}, got {value!r}"
                )

    def replace(self, overrides: Mapping[str, Any]) -> Self:
        """A copy with ``overrides``; a nested preset takes a mapping of its own fields.

        Raises
        ------
        TypeError
            For a field the preset does not have (the message lists the valid ones), or a
            value of the wrong type.
        """
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise TypeError(
                f"{type(self).__name__} has no field(s) {unknown}; valid: {sorted(names)}"
            )
        changes = {}
        for name, value in overrides.items():
            current = getattr(self, name)
            if isinstance(current, Preset) and isinstance(value, Mapping):
                value = current.replace(value)
            changes[name] = value
        return dataclasses.replace(self, **changes)


def scaled(book: P, *, smoke: Mapping[str, Any], full: Mapping[str, Any]) -> dict[str, P]:
    """The three scales of a preset: ``book`` as written, the others as overrides of it."""
    presets = {"smoke": book.replace(smoke), "book": book, "full": book.replace(full)}
    return {scale: presets[scale] for scale in SCALES}


@dataclass(frozen=True)
class DataSpec(Preset):
    """Which images a chapter uses.

    Attributes
    ----------
    n_images : int
        Glyph images rendered (Glyphs only; real datasets use their own size).
    image_size : int
        Side of the rendered images in pixels.
    pretrained_input_size : int
        Side the images are resized to for the packaged ImageNet networks (EfficientNet-Lite is
        trained at 224-260 px; smaller sizes trade feature quality for CPU time).
    """

    n_images: int
    image_size: int = 32
    pretrained_input_size: int = 224


#: The one Glyphs set per scale. Every chapter that can share it does, so a cold book renders the
#: images once and extracts the packaged networks' outputs on them once. 13,200 images are 120
#: per character (100 train, 20 test).
GLYPHS: dict[str, DataSpec] = {
    "smoke": DataSpec(n_images=1_320, pretrained_input_size=32),
    "book": DataSpec(n_images=13_200, pretrained_input_size=64),
    "full": DataSpec(n_images=60_000, pretrained_input_size=224),
}


@dataclass(frozen=True)
class TrainingSpec(Preset):
    """How a network is trained (from scratch, or fine-tuned from a source).

    Attributes
    ----------
    model : str
        Architecture name for :func:`transferlib.models.build_model` (ignored when fine-tuning,
        which keeps the source's architecture).
    epochs, lr, batch_size : int, float, int
        SGD schedule (cosine decay of ``lr`` over ``epochs``).
    weight_decay, momentum : float
    nesterov : bool
        Nesterov momentum.
    warmup_epochs : float
        Linear learning-rate warm-up before the cosine decay (lets small networks train at a
        high ``lr``).
    eval_every : int
        Evaluate the test set after every ``eval_every``-th epoch (0: only after the last).
    augment : bool
        Random crops and flips (off for Glyphs: flips change characters).
    backbone_lr_multiplier : float
        Learning rate of every layer but the head, relative to ``lr`` (fine-tuning uses < 1).
    width : int or None
        Width parameter of ``small_cnn`` / ``resnet20`` (None: the architecture's default).
    """

    model: str
    epochs: int
    lr: float
    batch_size: int
    weight_decay: float = 5e-4
    momentum: float = 0.9
    nesterov: bool = False
    warmup_epochs: float = 0.0
    eval_every: int = 1
    augment: bool = False
    backbone_lr_multiplier: float = 1.0
    width: int | None = None

    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`transferlib.models.build_model`."""
        return {} if self.width is None else {"width": self.width}


def _stream_entropy(seed: int, names: tuple[str | int, ...]) -> list[int]:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed must be a non-negative integer, got {seed!r}")
    words = [int(seed)]
    for name in names:
        if isinstance(name, (int, np.integer)) and not isinstance(name, bool):
            words.append(int(name))
        else:
            words.append(int.from_bytes(hashlib.sha256(str(name).encode()).digest()[:8], "big"))
    return words


def rng(seed: int, *stream: str | int) -> np.random.Generator:
    """NumPy generator of the named stream ``stream`` of ``seed``.

    Examples
    --------
    >>> a = rng(0, "nce", "subsample").integers(1000, size=3)
    >>> b = rng(0, "nce", "subsample").integers(1000, size=3)
    >>> bool((a == b).all())
    True
    """
    return np.random.default_rng(np.random.SeedSequence(_stream_entropy(seed, stream)))


def stream_seed(seed: int, *stream: str | int) -> int:
    """A 31-bit integer seed for the named stream (for torch, scikit-learn, task constructors)."""
    state = np.random.SeedSequence(_stream_entropy(seed, stream)).generate_state(1)
    return int(state[0] >> 1)
