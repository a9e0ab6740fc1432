"""P2L: predicting the best source dataset from its size and an embedding divergence.

Bhattacharjee, Kender, Hill, Dube, Huo, Glass, Belgodere, Pankanti, Codella & Watson,
"P2L: Predicting Transfer Learning for Images and Semantic Relations", 2020 (Sec. 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from transferlib.scores._backend import namespace
from transferlib.scores._inputs import normalised
from transferlib.validation import (
    as_float_array,
    binary_exponent,
    check_choice,
    check_int,
    check_real,
)

__all__ = ["METRICS", "KFit", "dataset_embedding", "divergence", "embedding_divergence", "fit_k"]

METRICS = ("kl", "jsd", "chi2", "euclidean", "cityblock")
_DISTRIBUTION_METRICS = ("kl", "jsd", "chi2")


def dataset_embedding(features: Any, eps: float = 1e-10) -> np.ndarray:
    r"""Summary vector of a dataset: L1-normalised mean feature, :math:`\varepsilon`-smoothed.

    .. math:: \bar v = \frac{1}{n}\sum_i v_i, \qquad
              F = \frac{\bar v / \|\bar v\|_1 + \varepsilon}{1 + d\,\varepsilon}

    (P2L Sec. 3.2: mean of the penultimate-layer responses, L1-normalised, zero
    components smoothed by adding :math:`\varepsilon`; dividing by
    :math:`1 + d\varepsilon` keeps :math:`F` a distribution).

    Parameters
    ----------
    features : array-like or tensor of shape (n, d)
        Non-negative per-sample features of the reference model (e.g. after ReLU).
        Torch input is averaged on its device; the result is NumPy.
    eps : float
        Smoothing added to every component, finite and :math:`\ge 0`.

    Returns
    -------
    ndarray of shape (d,)
        Positive (for ``eps > 0``) vector summing to 1; invariant to the scale of the
        features. A huge ``eps`` gives the uniform vector.

    Raises
    ------
    TypeError
        Non-numeric features, ``eps`` not a real number.
    ValueError
        Features not 2-D, empty, NaN/inf, negative or all zero; ``eps`` negative or
        not finite.

    Examples
    --------
    >>> dataset_embedding([[1.0, 0.0, 3.0], [3.0, 0.0, 1.0]], eps=0.0)
    array([0.5, 0. , 0.5])
    """
    eps = check_real(eps, "eps", minimum=0.0)
    xp = namespace(features)
    f = as_float_array(features, "features")
    if xp.item(xp.min(f)) < 0:
        raise ValueError("features must be non-negative (e.g. post-ReLU) for a dataset embedding")
    # scaled by an exact power of two first: the embedding is scale invariant, and the
    # column sums of features near 1e308 would overflow
    mean = xp.to_numpy(xp.sum(normalised(xp, f)[0], axis=0)) / f.shape[0]
    total = mean.sum()
    if total <= 0:
        raise ValueError("features are all zero; the embedding cannot be L1-normalised")
    d = mean.shape[0]
    # (share + eps) / (1 + d eps), written so that a huge eps gives 1/d instead of inf/inf
    smoothing = 1.0 / (1.0 / eps + d) if eps > 0 else 0.0
    return mean / total / (1.0 + d * eps) + smoothing


def _kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    support = p > 0
    # log p - log q, not log(p / q): the ratio overflows when q is subnormal
    logs = np.log(np.where(support, p, 1.0)) - np.log(np.where(support, q, 1.0))
    return np.where(support, p * logs, 0.0).sum(axis=-1)


def divergence(p: Any, q: Any, metric: str = "kl") -> float | np.ndarray:
    r"""Dissimilarity :math:`D(t, s)` between a target embedding ``p`` and source embeddings ``q``.

    =============  ==============================================================
    ``"kl"``       :math:`\mathrm{KL}(p\,\|\,q) = \sum_j p_j \log(p_j / q_j)`
    ``"jsd"``      Jensen-Shannon *distance* :math:`\sqrt{\tfrac12\mathrm{KL}(p\|m) +
                   \tfrac12\mathrm{KL}(q\|m)}`, :math:`m = (p+q)/2` (natural log)
    ``"chi2"``     :math:`\chi^2` distance :math:`\tfrac12\sum_j (p_j-q_j)^2/(p_j+q_j)`
                   (terms with :math:`p_j = q_j = 0` are 0)
    ``"euclidean"`` :math:`\|p - q\|_2`
    ``"cityblock"`` :math:`\|p - q\|_1`
    =============  ==============================================================

    These are the candidates P2L Sec. 3.1 lists (its Fig. 1 uses the Jensen-Shannon
    distance). All are 0 for identical inputs and larger for more dissimilar ones.

    Parameters
    ----------
    p : array-like of shape (d,)
        Target embedding (see :func:`dataset_embedding`).
    q : array-like of shape (d,) or (m, d)
        One source embedding, or one per row (vectorised over rows).
    metric : {"kl", "jsd", "chi2", "euclidean", "cityblock"}

    Returns
    -------
    float or ndarray of shape (m,)
        A float for 1-D ``q``, an array for 2-D ``q``; finite.

    Raises
    ------
    TypeError
        Non-numeric input, ``metric`` not a string.
    ValueError
        Unknown ``metric``, wrong shapes, NaN/inf, non-distributions for the
        distribution metrics, zeros of ``q`` where ``p > 0`` for KL, and a Euclidean or
        city-block distance beyond the float64 range (inputs near 1e308 of opposite signs).

    Notes
    -----
    ``"kl"``, ``"jsd"`` and ``"chi2"`` need distributions (non-negative, summing to 1
    within 1e-6); KL is taken target-to-source and needs :math:`q_j > 0` wherever
    :math:`p_j > 0` (use ``eps > 0`` in :func:`dataset_embedding`). The two norms are
    computed on inputs scaled by an exact power of two, so inputs of any magnitude work.
    Cost :math:`O(md)`.

    Examples
    --------
    >>> divergence([0.5, 0.5], [[0.25, 0.75], [0.5, 0.5]], "cityblock")
    array([0.5, 0. ])
    """
    check_choice(metric, "metric", METRICS)
    p_arr = as_float_array(p, "p", ndim=1, numpy=True)
    q_arr = as_float_array(q, "q", ndim=(1, 2), numpy=True)
    if q_arr.shape[-1] != p_arr.shape[0]:
        raise ValueError(f"dimension mismatch: p has {p_arr.shape[0]}, q has {q_arr.shape[-1]}")
    if metric in _DISTRIBUTION_METRICS:
        for name, arr in (("p", p_arr), ("q", q_arr)):
            if arr.min() < 0:
                raise ValueError(
                    f"{name} has negative entries; metric {metric!r} needs distributions"
                )
            if np.abs(arr.sum(axis=-1) - 1).max() > 1e-6:
                raise ValueError(f"{name} must sum to 1 for metric {metric!r}")
    if metric == "kl":
        if np.any((p_arr > 0) & (q_arr == 0)):
            raise ValueError(
                "q has zeros where p > 0, so KL(p||q) is infinite; smooth with eps > 0"
            )
        result = _kl(p_arr, q_arr)
    elif metric == "jsd":
        m = 0.5 * (p_arr + q_arr)
        result = np.sqrt(np.maximum(0.5 * _kl(p_arr, m) + 0.5 * _kl(q_arr, m), 0.0))
    elif metric == "chi2":
        total = p_arr + q_arr
        ratio = np.where(total > 0, (p_arr - q_arr) ** 2 / np.where(total > 0, total, 1.0), 0.0)
        result = 0.5 * ratio.sum(axis=-1)
    else:
        exponent = binary_exponent(max(float(np.abs(p_arr).max()), float(np.abs(q_arr).max())))
        difference = np.abs(np.ldexp(p_arr, -exponent) - np.ldexp(q_arr, -exponent))
        if metric == "euclidean":
            result = np.sqrt((difference * difference).sum(axis=-1))
        else:
            result = difference.sum(axis=-1)
        result = np.ldexp(result, exponent)
        if not np.all(np.isfinite(result)):
            raise ValueError(f"the {metric} distance of p and q exceeds the float64 range")
    return float(result) if q_arr.ndim == 1 else np.asarray(result)


def _zscore(x: np.ndarray) -> np.ndarray:
    """z-score along the last axis; a constant vector carries no ranking information -> 0.

    Each vector is first scaled by an exact power of two that brings its largest entry
    near 1 (the z-score is scale invariant), so values near 1e308 do not overflow.
    """
    largest = np.max(np.abs(x), axis=-1, keepdims=True)
    x = np.ldexp(x, -np.frexp(largest)[1])
    std = x.std(axis=-1, keepdims=True)
    centred = x - x.mean(axis=-1, keepdims=True)
    return np.where(std > 0, centred / np.where(std > 0, std, 1.0), 0.0)


def embedding_divergence(source_sizes: Any, divergences: Any, k: float) -> np.ndarray:
    r"""P2L embedding divergence :math:`E(t, s) = z(\log|s|) + k \cdot z(D(t, s))` (eq. 2).

    :math:`z(x) = (x - \mu)/\sigma` is taken across the candidate sources (population
    standard deviation; a constant input gives 0). Sign convention: the formula is the
    paper's, unchanged; :math:`k` is learned (:func:`fit_k`) to make :math:`E` rank
    sources like the measured improvement :math:`I(t, s)` (eq. 1). Because
    dissimilarity "works against size" (Sec. 3.1), the fitted :math:`k` is negative in
    practice, and **a larger E means a better predicted source**: a large, near source
    scores above a small, far one for every :math:`k < 0`.

    Parameters
    ----------
    source_sizes : array-like of shape (m,) or (t, m)
        Number of images in each candidate source, positive.
    divergences : array-like of shape (m,) or (t, m)
        :math:`D(t, s)` for each source (one row per target when 2-D).
    k : float
        Balance between size and divergence, finite.

    Returns
    -------
    ndarray of shape (m,) or (t, m)
        Scores; rank sources by decreasing value. Finite: the z-scores are computed on
        inputs scaled by exact powers of two, so values of any magnitude work.

    Raises
    ------
    TypeError
        Non-numeric input, ``k`` not a real number.
    ValueError
        Wrong or mismatched shapes, NaN/inf, fewer than two sources, non-positive
        sizes, and a ``k`` so large that :math:`k \cdot z(D)` overflows float64.

    Examples
    --------
    >>> embedding_divergence([1e6, 1e3, 1e4], [0.1, 0.9, 0.5], k=-1.0).round(3)
    array([ 2.561, -2.294, -0.267])
    """
    k = check_real(k, "k")
    divergence_arr = as_float_array(divergences, "divergences", ndim=(1, 2), numpy=True)
    sizes = _sizes(source_sizes, divergence_arr.shape)
    if divergence_arr.shape[-1] < 2:
        raise ValueError("embedding_divergence needs at least two candidate sources")
    with np.errstate(over="ignore"):  # reported below, with the cause
        result = _zscore(np.log(sizes)) + k * _zscore(divergence_arr)
    if not np.all(np.isfinite(result)):
        raise ValueError(f"k * z(divergences) overflows float64 for k={k:g}")
    return result


def _sizes(source_sizes: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Positive source sizes of shape (m,), or (t, m) matching 2-D divergences."""
    sizes = as_float_array(source_sizes, "source_sizes", ndim=(1, 2), numpy=True)
    if sizes.shape[-1] != shape[-1] or (sizes.ndim == 2 and sizes.shape[0] != shape[0]):
        raise ValueError(
            f"shape mismatch: source_sizes {sizes.shape} for divergences {shape}; "
            "expected (m,) or (t, m) with the same m (and t)"
        )
    if sizes.min() <= 0:
        raise ValueError("source_sizes must be positive")
    return sizes


@dataclass(frozen=True)
class KFit:
    """Result of :func:`fit_k`: the chosen ``k`` and the criterion over the grid."""

    k: float
    grid: np.ndarray
    mean_spearman: np.ndarray
    top: int


def _row_spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of matching rows (average ranks for ties; constant rows -> 0)."""
    from scipy.stats import rankdata

    ra = _zscore(rankdata(a, axis=-1))
    rb = _zscore(rankdata(b, axis=-1))
    return (ra * rb).mean(axis=-1)


def fit_k(
    source_sizes: Any,
    divergences: Any,
    improvements: Any,
    *,
    k_grid: Any = None,
    top: int = 3,
) -> KFit:
    r"""Choose P2L's :math:`k` on training (target, source) pairs (P2L Sec. 3.1).

    For each :math:`k` in the grid and each training target, the sources are restricted
    to the ``top`` sources with the largest measured improvement :math:`I(t, s)`, and
    the Spearman correlation between :math:`E(t, s)` (:func:`embedding_divergence`) and
    :math:`I(t, s)` over them is computed; the :math:`k` with the largest mean over
    targets wins (the first on ties).

    Parameters
    ----------
    source_sizes : array-like of shape (m,) or (t, m)
        Sizes of the candidate sources.
    divergences, improvements : array-like of shape (t, m)
        :math:`D(t, s)` and the ground-truth improvement (eq. 1; accuracy, or any
        quantity where larger is better) for each training target and source.
    k_grid : array-like, optional
        Finite candidate values (1-D, non-empty); default ``numpy.linspace(-5, 5, 101)``
        (both signs, so the data decide the orientation).
    top : int
        :math:`T`, the number of best sources whose order is scored, ``2 <= top <= m``.

    Returns
    -------
    KFit
        ``k``, ``grid`` and ``mean_spearman`` (one value per grid point, e.g. to plot
        P2L Fig. 1), and ``top``. A target whose top improvements are all equal carries
        no ranking information and contributes a Spearman correlation of 0.

    Raises
    ------
    TypeError
        Non-numeric input, ``top`` not an integer.
    ValueError
        Wrong or mismatched shapes, NaN/inf, ``top`` out of range, non-positive sizes.
    """
    divergence_arr = as_float_array(divergences, "divergences", ndim=2, numpy=True)
    improvement_arr = as_float_array(improvements, "improvements", ndim=2, numpy=True)
    if divergence_arr.shape != improvement_arr.shape:
        raise ValueError(
            f"shape mismatch: divergences {divergence_arr.shape}, "
            f"improvements {improvement_arr.shape}"
        )
    top = check_int(top, "top", minimum=2, maximum=divergence_arr.shape[1])
    sizes = np.broadcast_to(_sizes(source_sizes, divergence_arr.shape), divergence_arr.shape)
    grid = (
        np.linspace(-5, 5, 101)
        if k_grid is None
        else as_float_array(k_grid, "k_grid", ndim=1, numpy=True)
    )
    best = np.argsort(-improvement_arr, axis=1, kind="stable")[:, :top]
    truth = np.take_along_axis(improvement_arr, best, axis=1)
    criterion = np.array(
        [
            _row_spearman(
                np.take_along_axis(
                    embedding_divergence(sizes, divergence_arr, float(k)), best, axis=1
                ),
                truth,
            ).mean()
            for k in grid
        ]
    )
    return KFit(
        k=float(grid[int(np.argmax(criterion))]), grid=grid, mean_spearman=criterion, top=top
    )
