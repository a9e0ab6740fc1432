"""P2L: predicting the best source dataset from its size and an embedding divergence.

Bhattacharjee, Kender, Hill, Dube, Huo, Glass, Belgodere, Pankanti, Codella & Watson,
"P2L: Predicting Transfer Learning for Images and Semantic Relations", 2020 (Sec. 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from transferlib.scores._backend import namespace
from transferlib.scores._validation import as_features

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
        Smoothing added to every component, :math:`\ge 0`.

    Returns
    -------
    ndarray of shape (d,)
        Positive (for ``eps > 0``) vector summing to 1.

    Examples
    --------
    >>> dataset_embedding([[1.0, 0.0, 3.0], [3.0, 0.0, 1.0]], eps=0.0)
    array([0.5, 0. , 0.5])
    """
    if not np.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a non-negative finite number, got {eps}")
    xp = namespace(features)
    f = as_features(features, xp)
    if xp.item(xp.min(f)) < 0:
        raise ValueError("features must be non-negative (e.g. post-ReLU) for a dataset embedding")
    mean = xp.to_numpy(xp.sum(f, axis=0)) / f.shape[0]
    total = mean.sum()
    if total <= 0:
        raise ValueError("features are all zero; the embedding cannot be L1-normalised")
    return (mean / total + eps) / (1.0 + mean.shape[0] * eps)


def _as_vectors(x: Any, name: str, ndim: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float64)
    if arr.ndim not in ndim:
        raise ValueError(f"{name} must be {' or '.join(f'{d}-D' for d in ndim)}, got {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def _kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    support = p > 0
    terms = np.where(support, p * np.log(np.where(support, p, 1.0) / np.where(support, q, 1.0)), 0)
    return terms.sum(axis=-1)


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
        A float for 1-D ``q``, an array for 2-D ``q``.

    Notes
    -----
    ``"kl"``, ``"jsd"`` and ``"chi2"`` need distributions (non-negative, summing to 1
    within 1e-6); KL is taken target-to-source and needs :math:`q_j > 0` wherever
    :math:`p_j > 0` (use ``eps > 0`` in :func:`dataset_embedding`). Cost :math:`O(md)`.

    Examples
    --------
    >>> divergence([0.5, 0.5], [[0.25, 0.75], [0.5, 0.5]], "cityblock")
    array([0.5, 0. ])
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    p_arr = _as_vectors(p, "p", (1,))
    q_arr = _as_vectors(q, "q", (1, 2))
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
    elif metric == "euclidean":
        result = np.sqrt(((p_arr - q_arr) ** 2).sum(axis=-1))
    else:
        result = np.abs(p_arr - q_arr).sum(axis=-1)
    return float(result) if q_arr.ndim == 1 else np.asarray(result)


def _zscore(x: np.ndarray) -> np.ndarray:
    """z-score along the last axis; a constant vector carries no ranking information -> 0."""
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
        Balance between size and divergence.

    Returns
    -------
    ndarray of shape (m,) or (t, m)
        Scores; rank sources by decreasing value.

    Examples
    --------
    >>> embedding_divergence([1e6, 1e3, 1e4], [0.1, 0.9, 0.5], k=-1.0).round(3)
    array([ 2.561, -2.294, -0.267])
    """
    divergence_arr = _as_vectors(divergences, "divergences", (1, 2))
    sizes = _as_vectors(source_sizes, "source_sizes", (1, 2))
    if sizes.shape[-1] != divergence_arr.shape[-1]:
        raise ValueError(
            f"length mismatch: source_sizes has {sizes.shape[-1]} sources, "
            f"divergences has {divergence_arr.shape[-1]}"
        )
    if divergence_arr.shape[-1] < 2:
        raise ValueError("embedding_divergence needs at least two candidate sources")
    if sizes.min() <= 0:
        raise ValueError("source_sizes must be positive")
    if not np.isfinite(k):
        raise ValueError(f"k must be finite, got {k}")
    return _zscore(np.log(sizes)) + k * _zscore(divergence_arr)


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
        Candidate values; default ``numpy.linspace(-5, 5, 101)`` (both signs, so the
        data decide the orientation).
    top : int
        :math:`T`, the number of best sources whose order is scored, ``2 <= top <= m``.

    Returns
    -------
    KFit
        ``k``, ``grid`` and ``mean_spearman`` (one value per grid point, e.g. to plot
        P2L Fig. 1), and ``top``.
    """
    divergence_arr = _as_vectors(divergences, "divergences", (2,))
    improvement_arr = _as_vectors(improvements, "improvements", (2,))
    if divergence_arr.shape != improvement_arr.shape:
        raise ValueError(
            f"shape mismatch: divergences {divergence_arr.shape}, "
            f"improvements {improvement_arr.shape}"
        )
    n_sources = divergence_arr.shape[1]
    if not 2 <= top <= n_sources:
        raise ValueError(f"top must be in [2, {n_sources}], got {top}")
    grid = np.linspace(-5, 5, 101) if k_grid is None else _as_vectors(k_grid, "k_grid", (1,))
    best = np.argsort(-improvement_arr, axis=1, kind="stable")[:, :top]
    truth = np.take_along_axis(improvement_arr, best, axis=1)
    sizes = np.broadcast_to(_as_vectors(source_sizes, "source_sizes", (1, 2)), divergence_arr.shape)
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
