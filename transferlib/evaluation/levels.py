"""Transferability levels: equal-width bins of the score range (LEEP Sec. 5.2)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from transferlib.validation import as_vector_pair, binary_exponent, check_int

__all__ = ["transferability_levels"]


def transferability_levels(scores: Any, metric: Any, n_levels: int = 5) -> pd.DataFrame:
    r"""Mean measured performance per transferability level.

    The range :math:`[\min s, \max s]` of the scores is cut into ``n_levels`` bins of
    equal width; level 1 holds the lowest scores. Bins are half-open
    :math:`[e_j, e_{j+1})` except the last, which includes the maximum. This is how
    Nguyen et al. (LEEP, Sec. 5.2, Fig. 2) average out the noise of small targets.

    Parameters
    ----------
    scores : array-like of shape (n,)
        Transferability scores, not all equal; any finite magnitude.
    metric : array-like of shape (n,)
        Measured performance of each task (e.g. test accuracy).
    n_levels : int
        Number of bins, >= 1.

    Returns
    -------
    pandas.DataFrame
        One row per level with columns ``level`` (1..n_levels), ``lower``, ``upper``
        (bin edges), ``count``, ``mean_metric``, ``std_metric`` (sample standard
        deviation) and ``mean_score``. Missing values are pandas' NaN, by design and only
        there: an empty level is kept with ``count == 0`` and NaN statistics (so levels
        stay aligned across settings), and ``std_metric`` is NaN for a level with one
        task. Every other entry is finite.

    Raises
    ------
    TypeError
        Non-numeric input, ``n_levels`` not an integer.
    ValueError
        Not 1-D, unequal lengths, empty, NaN/inf, ``n_levels < 1``, all scores equal.

    Notes
    -----
    Edges and statistics are computed on values scaled by exact powers of two, so
    scores spanning [-1e308, 1e308] or metrics near 1e308 do not overflow.

    Examples
    --------
    >>> table = transferability_levels([0.1, 0.2, 0.8, 0.9], [0.5, 0.6, 0.8, 0.9], n_levels=2)
    >>> table[["level", "count", "mean_metric"]]
       level  count  mean_metric
    0      1      2         0.55
    1      2      2         0.85
    """
    s, m = as_vector_pair(scores, metric, ("scores", "metric"))
    n_levels = check_int(n_levels, "n_levels", minimum=1)
    if s.min() == s.max():
        raise ValueError("scores are all equal; the score range cannot be binned")
    s_exponent = binary_exponent(float(np.abs(s).max()))
    m_exponent = binary_exponent(float(np.abs(m).max()))
    scaled = np.ldexp(s, -s_exponent)
    edges = np.linspace(scaled.min(), scaled.max(), n_levels + 1)
    level = np.clip(np.searchsorted(edges, scaled, side="right") - 1, 0, n_levels - 1)
    frame = pd.DataFrame({"level": level + 1, "metric": np.ldexp(m, -m_exponent), "score": scaled})
    grouped = frame.groupby("level")
    index = pd.Index(np.arange(1, n_levels + 1), name="level")
    return pd.DataFrame(
        {
            "lower": np.ldexp(edges[:-1], s_exponent),
            "upper": np.ldexp(edges[1:], s_exponent),
            "count": grouped.size().reindex(index, fill_value=0).astype(int),
            "mean_metric": np.ldexp(grouped["metric"].mean().reindex(index), m_exponent),
            "std_metric": np.ldexp(grouped["metric"].std(ddof=1).reindex(index), m_exponent),
            "mean_score": np.ldexp(grouped["score"].mean().reindex(index), s_exponent),
        },
        index=index,
    ).reset_index()
