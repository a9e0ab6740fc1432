"""Ranking metrics: does a score pick the best source/model?"""

from __future__ import annotations

from typing import Any

import numpy as np

from transferlib.validation import as_vector_pair, binary_exponent, check_int

__all__ = ["best_in_top_k", "dcg", "ndcg", "relative_top_k_accuracy", "top_k_regret"]


def _check_k(k: Any, n: int) -> int:
    return check_int(k, "k", minimum=1, maximum=n)


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores (stable: earlier items first on ties)."""
    return np.argsort(-scores, kind="stable")[:k]


def relative_top_k_accuracy(scores: Any, metric: Any, k: int = 1) -> float:
    r"""Best metric among the score's top-k picks, relative to the best overall.

    .. math:: \mathrm{Rel@}k = \frac{\max_{i \in \mathrm{top}_k(s)} m_i}{\max_i m_i}

    (Li et al. 2021, "Ranking Neural Checkpoints"). 1 means the best candidate is
    among the first k picks.

    Parameters
    ----------
    scores : array-like of shape (n,)
        Transferability scores (higher = predicted better).
    metric : array-like of shape (n,)
        Measured performance, e.g. accuracy; must be positive (a ratio).
    k : int
        Number of picks, ``1 <= k <= n``. Ties in ``scores`` are broken by position.

    Returns
    -------
    float
        In [0, 1] (0 only when the ratio underflows).

    Raises
    ------
    TypeError
        Non-numeric input, ``k`` not an integer.
    ValueError
        Not 1-D, unequal lengths, empty, NaN/inf, ``k`` out of range, a non-positive
        metric.

    Examples
    --------
    >>> round(relative_top_k_accuracy([0.9, 0.1, 0.5], [0.6, 0.8, 0.7], k=2), 4)
    0.875
    """
    s, m = as_vector_pair(scores, metric, ("scores", "metric"))
    k = _check_k(k, s.size)
    if m.min() <= 0:
        raise ValueError("metric must be positive for a relative accuracy")
    return float(m[_top_k(s, k)].max() / m.max())


def top_k_regret(scores: Any, metric: Any, k: int = 1) -> float:
    r"""What trusting the score costs: the best metric minus the best among its top-k picks.

    .. math:: \mathrm{regret@}k = \max_i m_i - \max_{i \in \mathrm{top}_k(s)} m_i

    The difference counterpart of :func:`relative_top_k_accuracy`; it is defined for any
    finite metric (a log-likelihood, a gain that may be negative), in the metric's units.

    Parameters
    ----------
    scores : array-like of shape (n,)
        Transferability scores (higher = predicted better).
    metric : array-like of shape (n,)
        Measured performance, any finite values.
    k : int
        Number of picks, ``1 <= k <= n``. Ties in ``scores`` are broken by position.

    Returns
    -------
    float
        Non-negative; 0 when a best candidate is among the k picks.

    Raises
    ------
    TypeError, ValueError
        As :func:`relative_top_k_accuracy`, except that any finite metric is allowed, and
        a difference beyond the float64 range.

    Examples
    --------
    >>> round(top_k_regret([0.2, 0.9, 0.5], [0.7, 0.6, 0.8]), 4)
    0.2
    """
    s, m = as_vector_pair(scores, metric, ("scores", "metric"))
    k = _check_k(k, s.size)
    with np.errstate(over="ignore"):  # reported below, with the cause
        value = float(m.max() - m[_top_k(s, k)].max())
    if not np.isfinite(value):
        raise ValueError("the regret exceeds the float64 range; rescale the metric")
    return value


def best_in_top_k(scores: Any, metric: Any, k: int = 1) -> bool:
    """Whether a candidate with the best metric is among the k highest-scored ones.

    Parameters
    ----------
    scores, metric : array-like of shape (n,)
        Scores (higher = predicted better) and measured performance.
    k : int
        ``1 <= k <= n``; ties in ``scores`` broken by position.

    Returns
    -------
    bool

    Raises
    ------
    TypeError, ValueError
        As :func:`relative_top_k_accuracy`, except that any finite metric is allowed.

    Examples
    --------
    >>> best_in_top_k([0.9, 0.1, 0.5], [0.6, 0.8, 0.7], k=2)
    False
    """
    s, m = as_vector_pair(scores, metric, ("scores", "metric"))
    k = _check_k(k, s.size)
    return bool(m[_top_k(s, k)].max() == m.max())


def _dcg(s: np.ndarray, rel: np.ndarray, k: int) -> float:
    order = np.argsort(-s, kind="stable")
    discounts = np.zeros(s.size)
    discounts[:k] = 1.0 / np.log2(np.arange(2, k + 2))
    _, group, counts = np.unique(-s[order], return_inverse=True, return_counts=True)
    mean_discount = np.bincount(group, weights=discounts) / counts
    return float((rel[order] * mean_discount[group]).sum())


def dcg(scores: Any, relevance: Any, k: int | None = None) -> float:
    r"""Discounted cumulative gain of the ranking induced by ``scores``.

    .. math:: \mathrm{DCG@}k = \sum_{r=1}^{k} \frac{\mathrm{rel}_{\pi(r)}}{\log_2(r + 1)}

    where :math:`\pi` orders items by decreasing score (linear gains, as in
    ``sklearn.metrics.dcg_score``). Tied scores share the average discount of the
    positions they occupy, so the result does not depend on input order. Bao et al.
    (2019) compare H-score rankings with task affinities this way.

    Parameters
    ----------
    scores : array-like of shape (n,)
        Predicted scores (higher ranks first).
    relevance : array-like of shape (n,)
        True relevance (e.g. measured transfer performance), any finite values.
    k : int, optional
        Only the first k positions count (``1 <= k <= n``); default all.

    Returns
    -------
    float

    Raises
    ------
    TypeError
        Non-numeric input, ``k`` neither None nor an integer.
    ValueError
        Not 1-D, unequal lengths, empty, NaN/inf, ``k`` out of range, and a DCG beyond
        the float64 range (relevances near 1e308); the sum is formed on relevances
        scaled by an exact power of two, so it overflows only when the result does.

    Examples
    --------
    >>> round(dcg([0.9, 0.1, 0.5], [3, 1, 2]), 4)
    4.7619
    """
    s, rel = as_vector_pair(scores, relevance, ("scores", "relevance"))
    k = s.size if k is None else _check_k(k, s.size)
    exponent = binary_exponent(float(np.abs(rel).max()))
    with np.errstate(over="ignore"):  # reported below, with the cause
        value = float(np.ldexp(_dcg(s, np.ldexp(rel, -exponent), k), exponent))
    if not np.isfinite(value):
        raise ValueError("the DCG exceeds the float64 range; rescale the relevance")
    return value


def ndcg(scores: Any, relevance: Any, k: int | None = None) -> float:
    r"""Normalised DCG: :func:`dcg` divided by the DCG of the ideal ranking (by relevance).

    Parameters
    ----------
    scores, relevance : array-like of shape (n,)
        As in :func:`dcg`; relevance must be non-negative and not all zero.
    k : int, optional
        Cut-off, ``1 <= k <= n``.

    Returns
    -------
    float
        In [0, 1]; 1 for a ranking that orders items by relevance. Invariant to the
        scale of the relevance.

    Raises
    ------
    TypeError, ValueError
        As :func:`dcg`; ValueError also for negative or all-zero relevance.

    Examples
    --------
    >>> round(ndcg([0.9, 0.1, 0.5], [0.6, 0.8, 0.7]), 4)
    0.9351
    """
    s, rel = as_vector_pair(scores, relevance, ("scores", "relevance"))
    k = s.size if k is None else _check_k(k, s.size)
    if rel.min() < 0:
        raise ValueError("relevance must be non-negative for nDCG")
    if rel.max() == 0:
        raise ValueError("relevance is all zero; nDCG is undefined")
    rel = np.ldexp(rel, -binary_exponent(float(rel.max())))
    return min(_dcg(s, rel, k) / _dcg(rel, rel, k), 1.0)
