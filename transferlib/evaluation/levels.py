"""Transferability levels: equal-width bins of the score range (LEEP Sec. 5.2)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from transferlib.evaluation._validation import as_pair

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
        Transferability scores, not all equal.
    metric : array-like of shape (n,)
        Measured performance of each task (e.g. test accuracy).
    n_levels : int
        Number of bins, >= 1.

    Returns
    -------
    pandas.DataFrame
        One row per level with columns ``level`` (1..n_levels), ``lower``, ``upper``
        (bin edges), ``count``, ``mean_metric``, ``std_metric`` (sample standard
        deviation, NaN for fewer than two tasks) and ``mean_score``. Empty bins are kept
        with ``count == 0`` and NaN means, so levels stay aligned across settings.

    Examples
    --------
    >>> table = transferability_levels([0.1, 0.2, 0.8, 0.9], [0.5, 0.6, 0.8, 0.9], n_levels=2)
    >>> table[["level", "count", "mean_metric"]]
       level  count  mean_metric
    0      1      2         0.55
    1      2      2         0.85
    """
    s, m = as_pair(scores, metric, ("scores", "metric"), minimum=1)
    if not isinstance(n_levels, (int, np.integer)) or n_levels < 1:
        raise ValueError(f"n_levels must be a positive integer, got {n_levels!r}")
    if np.ptp(s) == 0:
        raise ValueError("scores are all equal; the score range cannot be binned")
    edges = np.linspace(s.min(), s.max(), n_levels + 1)
    level = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, n_levels - 1)
    frame = pd.DataFrame({"level": level + 1, "metric": m, "score": s})
    grouped = frame.groupby("level")
    table = pd.DataFrame(
        {
            "level": np.arange(1, n_levels + 1),
            "lower": edges[:-1],
            "upper": edges[1:],
        }
    ).set_index("level")
    table["count"] = grouped.size().reindex(table.index, fill_value=0).astype(int)
    table["mean_metric"] = grouped["metric"].mean()
    table["std_metric"] = grouped["metric"].std(ddof=1)
    table["mean_score"] = grouped["score"].mean()
    return table.reset_index()
