"""Any subset of the :data:`~transferlib.scores.SCORES` registry on one set of source outputs."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from transferlib.scores import SCORES
from transferlib.training.device import resolve_device

__all__ = ["compute_scores"]


def compute_scores(
    names: Sequence[str],
    target_labels: Any,
    *,
    source_labels: Any = None,
    source_probs: Any = None,
    features: Any = None,
    timings: bool = False,
    device: str | torch.device | None = None,
) -> dict[str, float]:
    """Compute the scores ``names`` for one target task from what the source side provides.

    Each score takes the input it needs (source labels, source-model probabilities or features;
    see :class:`~transferlib.scores.ScoreInfo`); pass every input the requested scores need.

    Parameters
    ----------
    names : sequence of str
        Keys of :data:`~transferlib.scores.SCORES`.
    target_labels : array-like
    source_labels, source_probs, features : array-like, optional
    timings : bool
        Also return ``"<name>_seconds"``, the wall time of each score.
    device : str or torch.device, optional
        Where to compute (``"auto"`` as in :func:`~transferlib.training.resolve_device`): on a
        CUDA GPU, NumPy inputs are moved there once as torch tensors (every score accepts them
        and computes on their device). ``None``, a CPU, or Apple's MPS (no float64) keep NumPy.

    Returns
    -------
    dict
        Score name -> value (and seconds when ``timings``).

    Raises
    ------
    ValueError
        For an unknown score name (the message lists the registered ones).
    """
    unknown = [name for name in names if name not in SCORES]
    if unknown:
        raise ValueError(f"unknown score(s) {unknown}; registered: {sorted(SCORES)}")
    on = None if device is None else resolve_device(device)
    if on is not None and on.type == "cuda":
        target_labels, source_labels, source_probs, features = (
            _on_device(value, on)
            for value in (target_labels, source_labels, source_probs, features)
        )
    values: dict[str, float] = {}
    for name in names:
        start = time.perf_counter()
        values[name] = float(
            SCORES[name].compute(
                target_labels=target_labels,
                source_labels=source_labels,
                source_probs=source_probs,
                features=features,
            )
        )
        if timings:
            values[f"{name}_seconds"] = time.perf_counter() - start
    return values


def _on_device(value: Any, device: str | torch.device) -> Any:
    """A numeric array as a tensor on ``device``; anything else (None, string labels) as it is."""
    if value is None or isinstance(value, torch.Tensor):
        return value
    array = np.asarray(value)
    return torch.as_tensor(array, device=device) if array.dtype.kind in "biuf" else value
