"""SFDA: self-challenging Fisher discriminant analysis.

Shao, Zhao, Ge, Zhang, Yang, Wang, Shan & Luo, "Not All Models Are Equal: Predicting
Model Transferability in a Self-challenging Fisher Space", ECCV 2022.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from transferlib.scores._backend import Namespace
from transferlib.scores._inputs import feature_inputs, normalised
from transferlib.validation import check_choice, check_real

__all__ = ["sfda"]

_AVERAGES = ("log", "probability")
#: lambda = exp(-_DECAY * largest eigenvalue of S_W), floored at _FLOOR (authors' code).
_DECAY = 5.0
_FLOOR = 1e-10
_MACHINE_EPS = float(np.finfo(np.float64).eps)


def _class_residuals(xp: Namespace, f: Any, codes: Any, k: int, counts: Any) -> tuple[Any, Any]:
    """Class means (k, d) and the rows minus their class mean (n, d)."""
    means = xp.class_sums(xp.asarray(f), codes, k) / counts[:, None]
    return means, f - xp.take_rows(means, codes)


def _within_spectrum(xp: Namespace, within: Any) -> tuple[Any, Any]:
    r"""Eigenvalues :math:`s` (r,) above rounding level and the matching orthonormal
    eigenvectors :math:`V` (d, r) of :math:`S_W = W^\top W / n`, from the smaller Gram
    matrix of the residuals :math:`W` (for :math:`d \ge n`, :math:`v = W^\top u/\sqrt{ns}`).

    Eigenvalues at or below ``max(n, d) * eps`` times the largest are rounding noise of
    exact zeros and are dropped, so the null space of :math:`S_W` is exact (with a ridge
    near :math:`10^{-10}`, :math:`\Sigma_\lambda^{-1}` is largest there).
    """
    n, d = within.shape
    eigenvalues, vectors = xp.eigh(xp.gram(within) / n)
    keep = eigenvalues > max(n, d) * _MACHINE_EPS * xp.item(xp.max(eigenvalues))
    eigenvalues, vectors = eigenvalues[keep], vectors[:, keep]
    if d >= n:  # xp.gram gave W W^T (samples), not W^T W
        vectors = (within.T @ vectors) / xp.sqrt(n * eigenvalues)
    return eigenvalues, vectors


def _precision_times(
    xp: Namespace, spectrum: tuple[Any, Any], d: int, scale: float, ridge: float, m: Any
) -> Any | None:
    r""":math:`\Sigma^{-1} M` for :math:`\Sigma = a S_W + bI` (``scale`` :math:`a`,
    ``ridge`` :math:`b`) from the spectrum :math:`(s, V)` of :math:`S_W`:
    :math:`V \operatorname{diag}(1/(as + b)) V^\top M + (M - VV^\top M)/b`; None when
    :math:`\Sigma` is singular (:math:`b = 0` and :math:`S_W` not of full rank)."""
    eigenvalues, vectors = spectrum
    rank = eigenvalues.shape[0]
    if ridge == 0.0 and rank < d:
        return None
    projected = vectors.T @ m
    inside = vectors @ (projected / (scale * eigenvalues + ridge)[:, None])
    if rank == d:
        return inside
    # the part of M outside the range of S_W, projected out twice: after one pass its
    # components inside the range are rounding residue, which 1/b would magnify
    outside = m - vectors @ projected
    outside = outside - vectors @ (vectors.T @ outside)
    return inside + outside / ridge


def _adaptive_shrinkage(largest: float, exponent: int) -> float:
    """:math:`\\max(e^{-5\\sigma}, 10^{-10})` for the largest eigenvalue ``largest`` of
    :math:`S_W` of features scaled by ``2**-exponent`` (:math:`\\sigma` is that of the
    features before scaling)."""
    if largest <= 0.0:
        return 1.0
    if math.log(largest) + 2 * exponent * math.log(2.0) > math.log(1e3):
        return _FLOOR  # exp(-5000) is far below the floor
    return max(math.exp(-_DECAY * math.ldexp(largest, 2 * exponent)), _FLOOR)


def _log_posteriors(
    xp: Namespace, f: Any, codes: Any, k: int, counts: Any, shrinkage: float | None, exponent: int
) -> tuple[Any, Any, float]:
    r"""Log-posteriors (n, k) of the discriminant with the regularised within-class
    covariance :math:`\Sigma = (1-\lambda)S_W + \lambda\frac{\operatorname{tr}S_W}{d}I`,
    the class means, and :math:`\lambda` (computed when ``shrinkage`` is None)."""
    n, d = f.shape
    means, within = _class_residuals(xp, f, codes, k, counts)
    trace = xp.item(xp.sum(within * within)) / n
    if trace <= 0.0:
        raise ValueError(
            "features: every class is a single point (zero within-class scatter), so "
            "sfda's Fisher discriminant is undefined"
        )
    spectrum = _within_spectrum(xp, within)
    if shrinkage is None:
        shrinkage = _adaptive_shrinkage(xp.item(xp.max(spectrum[0])), exponent)
    precision_means = _precision_times(
        xp, spectrum, d, 1.0 - shrinkage, shrinkage * trace / d, means.T
    )
    if precision_means is None:
        raise ValueError(
            f"features: the regularised within-class covariance is singular at "
            f"shrinkage={shrinkage:g}; use a positive shrinkage"
        )
    logits = (
        f @ precision_means - 0.5 * xp.sum(means.T * precision_means, axis=0) + xp.log(counts / n)
    )
    return xp.log_softmax(logits), means, shrinkage


def sfda(
    features: Any,
    target_labels: Any,
    shrinkage: float | None = None,
    average: str = "log",
) -> float:
    r"""SFDA: likelihood of the labels under a regularised Fisher discriminant, after
    the features have been made harder by confusion-weighted mixing.

    With class means :math:`\mu_c`, priors :math:`\pi_c = n_c/n`, the pooled
    within-class covariance :math:`S_W` and the regularised

    .. math:: \Sigma_\lambda = (1-\lambda) S_W + \lambda \tfrac{\operatorname{tr} S_W}{d} I,
              \qquad \lambda = \max\big(e^{-5\,\sigma_{\max}(S_W)}, 10^{-10}\big),

    the Fisher discriminant on all directions of the Fisher space gives the posteriors
    :math:`p(c \mid x) = \operatorname{softmax}_c\big(x^\top\Sigma_\lambda^{-1}\mu_c
    - \tfrac12 \mu_c^\top\Sigma_\lambda^{-1}\mu_c + \log\pi_c\big)`. Self-challenging
    (ConfMix): each sample is moved towards the mean of the other classes' means
    :math:`\bar\mu_{-y_i}` in proportion to how confidently it was classified,

    .. math:: \hat x_i = w_i x_i + (1 - w_i)\,\bar\mu_{-y_i}, \qquad
              w_i = \operatorname{softmax}_c\big(p(c \mid x_i)\big)_{y_i},

    the discriminant is refitted on :math:`\hat x` with the same :math:`\lambda`, and

    .. math:: \mathrm{SFDA} = \frac1n \sum_i \log \hat p(y_i \mid \hat x_i).

    Higher is better.

    Parameters
    ----------
    features : array-like or tensor of shape (n, d)
        Source features on the target inputs (used as given).
    target_labels : array-like of shape (n,)
        Target labels; at least two classes.
    shrinkage : float, optional
        :math:`\lambda` in [0, 1]; default the adaptive value above. ``0`` needs a
        non-singular :math:`S_W` (``n - K >= d`` at least).
    average : {"log", "probability"}
        Average :math:`\log \hat p(y_i \mid \hat x_i)` (the paper's score, default) or
        :math:`\hat p(y_i \mid \hat x_i)` (what the authors' released code returns).

    Returns
    -------
    float
        SFDA: at most 0 (``"log"``) or in [0, 1] (``"probability"``). Invariant to the
        order of samples and label names; for a fixed ``shrinkage`` also to the scale of
        the features. The adaptive :math:`\lambda` depends on the scale: it is near 1
        (a nearest-mean classifier) for features of small variance and :math:`10^{-10}`
        for variances of a few units or more.

    Raises
    ------
    TypeError
        Non-numeric features, labels of mixed kinds, ``shrinkage`` not a real number,
        ``average`` not a string.
    ValueError
        Wrong shapes or lengths, NaN/inf, fewer than two classes, ``shrinkage`` outside
        [0, 1], unknown ``average``, zero within-class scatter (every class a single
        point), or a singular :math:`\Sigma_\lambda` at ``shrinkage=0``.

    Notes
    -----
    Conventions of the authors' released code, followed here: :math:`S_W` is the
    prior-weighted sum of maximum-likelihood (:math:`1/n_c`) class covariances; the
    shrinkage target is :math:`\operatorname{tr}(S_W)/d \cdot I`; the decay constant is 5;
    all :math:`d` Fisher directions are kept, and since the generalised eigenvectors
    :math:`V` satisfy :math:`V^\top\Sigma_\lambda V = I`, projecting on all of them gives
    :math:`VV^\top = \Sigma_\lambda^{-1}`: the Fisher-space posterior is the linear
    discriminant with covariance :math:`\Sigma_\lambda`, and the between-class scatter
    drops out. It is computed from one symmetric eigendecomposition of :math:`S_W` per pass
    (of the :math:`n \times n` Gram matrix when :math:`d \ge n`), no generalised
    eigenproblem. Eigenvalues of :math:`S_W` at rounding level (``max(n, d) * eps``
    relative to the largest) are taken as exact zeros, so the null space of a singular
    :math:`S_W`, on which :math:`\Sigma_\lambda^{-1}` is up to :math:`10^{10}` times larger,
    carries no rounding noise (the authors' code inverts the rounded matrix). The mixing
    weight :math:`w_i` is a softmax over the *posteriors*, as in that code (it lies in
    :math:`[1/(e + K - 1), e/(e + K - 1)]`), and
    :math:`\bar\mu_{-c}` is the unweighted mean of the other classes' means. Differences:
    :math:`\sigma_{\max}(S_W)` is the exact largest eigenvalue (the code runs three power
    iterations); the code averages probabilities, not their logarithms ("in case of
    instability"), available as ``average="probability"`` — log-posteriors are
    computed as log-softmax of the logits here, which is stable. Features of extreme
    magnitude are scaled by an exact power of two first, with :math:`\lambda` computed for
    the original scale. Time :math:`O(nd\min(n, d) + \min(n, d)^3)`.

    Few samples: when :math:`d \ge n - K`, :math:`S_W` is singular and, with
    :math:`\lambda` at its floor (features of variance above about 5), a linear
    discriminant separates the training samples exactly, so SFDA is 0 (probability 1)
    for every such model and cannot rank them; use more samples than dimensions, a
    larger ``shrinkage``, or project the features first (e.g. PCA).

    References
    ----------
    Shao et al. (2022), ECCV, Sec. 3 (regularised FDA, ConfMix self-challenging).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1, 2], 20)
    >>> x = rng.standard_normal((60, 4)) + 2 * np.eye(3, 4)[y]
    >>> round(sfda(x, y), 4), round(sfda(x, y, average="probability"), 4)
    (-0.6539, 0.6127)
    """
    shrinkage = check_real(shrinkage, "shrinkage", minimum=0.0, maximum=1.0, allow_none=True)
    check_choice(average, "average", _AVERAGES)
    xp, f, codes, k = feature_inputs(features, target_labels)
    f, exponent, _ = normalised(xp, xp.asarray(f))
    counts = xp.asarray(np.bincount(xp.to_numpy(codes), minlength=k))
    one_hot = xp.one_hot(codes, k)
    log_posteriors, means, shrinkage = _log_posteriors(xp, f, codes, k, counts, shrinkage, exponent)
    weights = xp.sum(xp.exp(xp.log_softmax(xp.exp(log_posteriors))) * one_hot, axis=1)[:, None]
    others = (xp.sum(means, axis=0, keepdims=True) - means) / (k - 1)
    mixed = weights * f + (1.0 - weights) * xp.take_rows(others, codes)
    log_posteriors = _log_posteriors(xp, mixed, codes, k, counts, shrinkage, exponent)[0]
    true_class = xp.sum(log_posteriors * one_hot, axis=1)
    values = true_class if average == "log" else xp.exp(true_class)
    score = xp.item(xp.sum(values)) / f.shape[0]
    if not math.isfinite(score):
        raise ValueError("features: sfda's discriminant overflowed (numerically singular)")
    return score
