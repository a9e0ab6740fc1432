"""Shared input checks for the evaluation statistics."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["as_pair", "as_vector"]


def as_vector(x: Any, name: str, minimum: int = 1) -> np.ndarray:
    """1-D finite float64 array with at least ``minimum`` entries (torch tensors accepted)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be numeric: {err}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if arr.size < minimum:
        raise ValueError(f"{name} needs at least {minimum} values, got {arr.size}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def as_pair(x: Any, y: Any, names: tuple[str, str], minimum: int) -> tuple[np.ndarray, np.ndarray]:
    """Two vectors of equal length (at least ``minimum``)."""
    a = as_vector(x, names[0])
    b = as_vector(y, names[1])
    if a.shape != b.shape:
        raise ValueError(f"length mismatch: {names[0]}={a.size}, {names[1]}={b.size}")
    if a.size < minimum:
        raise ValueError(f"{names[0]} and {names[1]} need at least {minimum} values, got {a.size}")
    return a, b
