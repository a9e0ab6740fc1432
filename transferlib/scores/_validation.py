"""Input validation shared by every score: one place that knows about array-likes,
torch tensors, NaN/inf, lengths, dimensions, label encoding and probability rows.

Each public score starts with these helpers, so its body is only the maths.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from transferlib.scores._backend import Namespace, is_torch

__all__ = [
    "as_features",
    "as_labels",
    "as_probs",
    "check_same_length",
    "require_classes",
]


def _to_numpy(x: Any, name: str) -> np.ndarray:
    if is_torch(x):
        return x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except ValueError as err:  # ragged nested lists
        raise ValueError(f"{name} could not be converted to an array: {err}") from None


def _check_numeric(arr_dtype: np.dtype, name: str) -> None:
    if not (
        np.issubdtype(arr_dtype, np.floating)
        or np.issubdtype(arr_dtype, np.integer)
        or np.issubdtype(arr_dtype, np.bool_)
    ):
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr_dtype}")


def as_features(x: Any, xp: Namespace, name: str = "features", ndim: int = 2) -> Any:
    """Return ``x`` as a float64 array of ``ndim`` dimensions on ``xp``'s backend.

    Raises TypeError for non-numeric data and ValueError for a wrong number of
    dimensions, an empty array or non-finite values.
    """
    if is_torch(x):
        if x.is_complex():
            raise TypeError(f"{name} must be real, got dtype {x.dtype}")
        if x.ndim != ndim:
            raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(x.shape)}")
        if x.numel() == 0:
            raise ValueError(f"{name} is empty (shape {tuple(x.shape)})")
        arr = xp.asarray(x)
    else:
        raw = _to_numpy(x, name)
        _check_numeric(raw.dtype, name)
        if raw.ndim != ndim:
            raise ValueError(f"{name} must be {ndim}-D, got shape {raw.shape}")
        if raw.size == 0:
            raise ValueError(f"{name} is empty (shape {raw.shape})")
        arr = xp.asarray(raw)
    if not xp.all_finite(arr):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def as_labels(y: Any, name: str = "target_labels") -> tuple[np.ndarray, np.ndarray]:
    """Re-encode a 1-D label sequence (ints, strings, bools, ...) as codes ``0..k-1``.

    Returns ``(codes, classes)`` with ``classes[codes] == y``; classes are sorted.
    """
    raw = _to_numpy(y, name)
    if raw.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {raw.shape}")
    if raw.size == 0:
        raise ValueError(f"{name} is empty")
    if np.issubdtype(raw.dtype, np.floating) and not np.isfinite(raw).all():
        raise ValueError(f"{name} contains NaN or inf")
    if raw.dtype == object and any(v is None for v in raw):
        raise ValueError(f"{name} contains None")
    try:
        classes, codes = np.unique(raw, return_inverse=True)
    except TypeError as err:
        raise TypeError(f"{name} mixes incomparable label types: {err}") from None
    return codes.astype(np.int64), classes


def as_probs(p: Any, xp: Namespace, name: str = "source_probs", atol: float = 1e-5) -> Any:
    """Return a (n, k) float64 array whose rows are probability distributions.

    Entries must be non-negative and each row must sum to 1 within ``atol``.
    """
    probs = as_features(p, xp, name=name)
    if xp.item(xp.min(probs)) < 0:
        raise ValueError(f"{name} has negative entries; rows must be probability distributions")
    row_error = xp.item(xp.max(xp.abs(xp.sum(probs, axis=1) - 1.0)))
    if row_error > atol:
        raise ValueError(
            f"{name} rows must sum to 1 (largest deviation {row_error:.3g} > atol={atol:g}); "
            "pass probabilities, not logits"
        )
    return probs


def check_same_length(**arrays: Any) -> int:
    """Raise ValueError unless all arrays have the same first dimension; return it."""
    lengths = {name: int(a.shape[0]) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{k}={v}" for k, v in lengths.items())
        raise ValueError(f"length mismatch: {described}")
    return next(iter(lengths.values()))


def require_classes(n_classes: int, minimum: int, name: str = "target_labels") -> None:
    """Raise ValueError when a label sequence has fewer than ``minimum`` classes."""
    if n_classes < minimum:
        raise ValueError(f"{name} has {n_classes} class(es); this score needs at least {minimum}")
