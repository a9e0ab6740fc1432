"""GBC: Gaussian Bhattacharyya coefficient of class-conditional feature distributions.

Pándy, Agostinelli, Uijlings, Ferrari & Mensink, "Transferability Estimation using
Bhattacharyya Class Separability", CVPR 2022.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from transferlib.scores._backend import Namespace
from transferlib.scores._inputs import feature_inputs, in_safe_range, normalised
from transferlib.validation import check_choice, check_real

__all__ = ["gbc"]

_GAUSSIANS = ("diagonal", "spherical")
#: Pair blocks of about this many (class, dimension) elements (~1 MB temporaries, in cache;
#: 4M-element blocks, 32 MB temporaries, ran 1.5x slower, 16k-element blocks 1.5x slower too,
#: from the Python overhead per block).
_BLOCK_ELEMENTS = 1 << 17


def _class_moments(xp: Namespace, f: Any, codes: Any, k: int) -> tuple[Any, Any, Any]:
    """Per-class counts (k, 1), means (k, d) and maximum-likelihood variances (1/n_c),
    in float64.

    Two passes per class over its rows, gathered into one reused block (one read of the
    features in all): the variance is the mean squared deviation from the class mean, so
    it has no cancellation however far the class lies from the origin.
    """
    codes_np = xp.to_numpy(codes)
    order = np.argsort(codes_np, kind="stable")
    bounds = np.searchsorted(codes_np[order], np.arange(k + 1))
    means, variances = xp.zeros((k, f.shape[1])), xp.zeros((k, f.shape[1]))
    block = xp.empty((int(np.diff(bounds).max()), f.shape[1]))
    for c, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        rows = block[: hi - lo]
        if f.dtype == block.dtype:
            xp.take_rows(f, xp.asarray(order[lo:hi], "int"), out=rows)
        else:  # float32 features: gathered, then widened into the float64 block
            rows[:] = xp.take_rows(f, xp.asarray(order[lo:hi], "int"))
        means[c] = xp.sum(rows, axis=0) / (hi - lo)
        rows -= means[c]
        rows *= rows
        variances[c] = xp.sum(rows, axis=0) / (hi - lo)
    return xp.asarray(np.diff(bounds))[:, None], means, variances


def _sum_of_logs(xp: Namespace, factors: Any) -> Any:
    r"""Row sums of :math:`\log` of ``factors`` (rows, d), all :math:`\ge 1` (up to rounding).

    The log of a product is the sum of the logs, so columns are first multiplied in pairs
    (halves of the row, in place) down to an eighth or a sixteenth of the width, and one
    logarithm is taken per product: the logarithms were most of GBC's time. Each product
    carries at most 15 roundings, so the sums agree with term-by-term logarithms to a few
    ulps of each product. ``factors`` is overwritten. Products of factors :math:`\ge 1`
    cannot underflow; one can overflow (to inf), e.g. when two classes' variances differ by
    ~1e39 or more in all 16 dimensions of a product, which the caller checks.
    """
    width = factors.shape[1]
    while width % 2 == 0 and width > factors.shape[1] // 16:
        half = width // 2
        factors[:, :half] *= factors[:, half:width]
        width = half
    return xp.sum(xp.log(factors[:, :width]), axis=1)


def _pair_distances_sum(xp: Namespace, means: Any, variances: Any, d_log: float) -> float:
    r""":math:`\sum_{i<j} e^{-D_B(i,j)}` over class pairs, in cache-sized blocks.

    ``variances`` is (k, d) for diagonal or (k, 1) for spherical covariances (then
    ``d_log = d``, the dimensions sharing one variance, which multiplies the
    log-determinant term). Writing :math:`s = v_i + v_j = 2\Sigma`,

    .. math:: D_B = \tfrac14 \sum (\Delta\mu)^2/s
              + \tfrac12 \sum \log \frac{s}{2\sqrt{v_i v_j}},

    where every log term is that of a factor :math:`\ge 1` (arithmetic over geometric
    mean), summed by :func:`_sum_of_logs` without cancellation between large
    log-determinants. Each block pairs one class :math:`i` with up to
    ``_BLOCK_ELEMENTS / d`` classes :math:`j > i`, updated in place.
    """
    k, d = means.shape
    per_dim = d_log / variances.shape[1]
    inverse_root = 1.0 / xp.sqrt(variances)
    half_inverse_root = 0.5 * inverse_root
    width = max(1, _BLOCK_ELEMENTS // d)
    total = 0.0
    for i in range(k - 1):
        for start in range(i + 1, k, width):
            others = slice(start, min(start + width, k))
            s = variances[i] + variances[others]
            delta = means[i] - means[others]
            delta *= delta
            delta /= s
            s *= half_inverse_root[i]
            s *= inverse_root[others]
            with np.errstate(over="ignore"):  # checked on the next line
                logs = _sum_of_logs(xp, s)
            if not math.isfinite(xp.item(xp.sum(logs))):  # a product overflowed: term by term
                s = (variances[i] + variances[others]) * half_inverse_root[i] * inverse_root[others]
                logs = xp.sum(xp.log(s), axis=1)
            distance = 0.25 * xp.sum(delta, axis=1) + 0.5 * per_dim * logs
            total += xp.item(xp.sum(xp.exp(-distance)))
    return total


def gbc(
    features: Any, target_labels: Any, gaussian: str = "diagonal", *, var_floor: float = 1e-8
) -> float:
    r"""Gaussian Bhattacharyya coefficient (GBC) of a feature space for a task.

    Each class :math:`c` is modelled as :math:`\mathcal N(\mu_c, \Sigma_c)` with diagonal
    :math:`\Sigma_c = \mathrm{diag}(v_c)` or spherical :math:`\Sigma_c = \bar v_c I_d`
    (:math:`\bar v_c` the mean of :math:`v_c`). With :math:`\Sigma = (\Sigma_i + \Sigma_j)/2`,

    .. math:: D_B(i, j) = \tfrac18 (\mu_i - \mu_j)^\top \Sigma^{-1} (\mu_i - \mu_j)
              + \tfrac12 \log \frac{\det\Sigma}{\sqrt{\det\Sigma_i \det\Sigma_j}},
              \qquad \mathrm{GBC} = -\sum_{i \ne j} e^{-D_B(i, j)}.

    Overlapping classes give Bhattacharyya coefficients near 1, so a larger (closer to 0)
    GBC means better separated classes. Higher is better.

    Parameters
    ----------
    features : array-like or tensor of shape (n, d)
        Source features on the target inputs. No dimensionality reduction is applied;
        project (e.g. PCA) beforehand if wanted, as Pándy et al. do in some experiments.
    target_labels : array-like of shape (n,)
        Target labels; at least two classes, each with at least two samples.
    gaussian : {"diagonal", "spherical"}
        Class covariance model.
    var_floor : float
        Non-negative; added to every per-class variance, relative to the mean feature
        variance, so a feature that is constant within a class (e.g. a dead ReLU) does
        not give :math:`\log 0`.

    Returns
    -------
    float
        :math:`\mathrm{GBC} \in [-|\mathcal Y|(|\mathcal Y| - 1), 0]`; scale and shift
        invariant. Identical features for all classes give the minimum.

    Raises
    ------
    TypeError
        Non-numeric features, labels of mixed kinds, ``var_floor`` not a real number,
        ``gaussian`` not a string.
    ValueError
        Wrong shapes or lengths, NaN/inf, fewer than two classes, a class with one
        sample, unknown ``gaussian``, negative or non-finite ``var_floor``.

    Notes
    -----
    Spherical convention: :math:`\Sigma_c = \bar v_c I_d` is a :math:`d`-dimensional
    covariance, so its log-determinant is :math:`d \log \bar v_c` and the log term of
    :math:`D_B` is :math:`\tfrac d2 \log\frac{(\bar v_i + \bar v_j)/2}{\sqrt{\bar v_i
    \bar v_j}}`. Google's published GBC code treats the spherical variance as a single
    dimension there (the factor :math:`d` is missing), which under-weights the
    variance term relative to the mean term; this implementation follows
    :math:`\det(\bar v I_d)`.

    Per-class moments are maximum-likelihood (:math:`1/n_c`), two-pass per class (mean,
    then mean squared deviation) over the class's rows gathered into one block, so one
    read of the features; float32 input is read as such and accumulated in float64.
    :math:`D_B` is symmetric, so only the :math:`|\mathcal Y|(|\mathcal
    Y|-1)/2` pairs :math:`i < j` are evaluated, in blocks whose temporaries stay in cache.
    The log term is summed as the logarithms of products of up to 16 per-dimension factors
    :math:`(v_i + v_j) / (2\sqrt{v_i v_j}) \ge 1` (one logarithm per pair and 16
    dimensions instead of per dimension; agreement with term-by-term logarithms to
    ~1e-15 relative, and term by term where a product would overflow). Time
    :math:`O(nd + |\mathcal Y|^2 d)`.
    When the class moments leave the safe range (features of extreme magnitude such as
    1e-170 or 1e300), they are recomputed on features scaled by an exact power of two.

    References
    ----------
    Pándy et al. (2022), CVPR, eq. 1-4.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1, 2], 20)
    >>> x = rng.standard_normal((60, 4)) + 2 * np.eye(3, 4)[y]
    >>> round(gbc(x, y), 4), round(gbc(x, y, gaussian="spherical"), 4)
    (-2.0203, -2.3103)
    """
    check_choice(gaussian, "gaussian", _GAUSSIANS)
    var_floor = check_real(var_floor, "var_floor", minimum=0.0)
    xp, f, codes, k = feature_inputs(features, target_labels)
    counts_np = np.bincount(xp.to_numpy(codes), minlength=k)
    if counts_np.min() < 2:
        raise ValueError(
            f"target_labels: class number {int(counts_np.argmin())} (in sorted order) has one "
            "sample; gbc needs at least two per class to estimate a variance"
        )
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):  # checked below
        counts, means, variances = _class_moments(xp, f, codes, k)
        largest = max(xp.max_abs(means), math.sqrt(xp.item(xp.max(variances))))
    if not in_safe_range(largest):  # NaN/inf included: redo on exactly rescaled features
        counts, means, variances = _class_moments(xp, normalised(xp, f)[0], codes, k)
    n, d = f.shape
    # mean feature variance about the global mean, from the class moments
    spread = means - xp.sum(counts * means, axis=0, keepdims=True) / n
    total_variance = xp.item(xp.sum(counts * (variances + spread * spread))) / (n * d)
    variances = variances + max(var_floor * total_variance, 1e-300)
    if gaussian == "spherical":
        variances = xp.sum(variances, axis=1, keepdims=True) / d
    return -2.0 * _pair_distances_sum(xp, means, variances, float(d))
