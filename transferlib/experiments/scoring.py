"""Any subset of the :data:`~transferlib.scores.SCORES` registry on one set of source outputs."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from transferlib.scores import SCORES

__all__ = ["compute_scores"]


def compute_scores(
    names: Sequence[str],
    target_labels: Any,
    *,
    source_labels: Any = None,
    source_probs: Any = None,
    features: Any = None,
    timings: bool = False,
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
