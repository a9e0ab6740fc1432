"""Correlation coefficients between transferability scores and measured performance.

Thin, validated wrappers around :mod:`scipy.stats` that always return
``(statistic, p_value)`` with Python floats.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from transferlib.validation import as_vector_pair, binary_exponent

__all__ = ["kendall", "pearson", "spearman", "weighted_kendall"]


def _pair(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validated pair, each scaled by an exact power of two (every statistic here is
    scale invariant), so values near 1e308 or 1e-300 neither overflow nor underflow."""
    a, b = as_vector_pair(x, y, ("x", "y"), minimum=3)
    for name, arr in (("x", a), ("y", b)):
        if arr.min() == arr.max():
            raise ValueError(f"{name} is constant; the correlation is undefined")
    return tuple(np.ldexp(v, -binary_exponent(float(np.abs(v).max()))) for v in (a, b))


def pearson(x: Any, y: Any) -> tuple[float, float]:
    r"""Pearson correlation :math:`r` and its two-sided p-value (``scipy.stats.pearsonr``).

    .. math:: r = \frac{\sum_i (x_i - \bar x)(y_i - \bar y)}
              {\sqrt{\sum_i (x_i - \bar x)^2 \sum_i (y_i - \bar y)^2}}

    The p-value is the exact one for bivariate normal data (t-test with n - 2 degrees of
    freedom), as reported by LEEP (Table 1) and Tran et al. (Fig. 2).

    Parameters
    ----------
    x, y : array-like of shape (n,)
        Paired values, n >= 3, finite, neither constant; any magnitude.

    Returns
    -------
    (float, float)
        ``(r, p_value)``, :math:`r \in [-1, 1]`.

    Raises
    ------
    TypeError
        Non-numeric input.
    ValueError
        Not 1-D, unequal lengths, fewer than 3 values, NaN/inf, a constant input.

    Examples
    --------
    >>> pearson([1, 2, 3, 4], [2, 4, 6, 8])[0]
    1.0
    """
    from scipy.stats import pearsonr

    a, b = _pair(x, y)
    result = pearsonr(a, b)
    return float(result.statistic), float(result.pvalue)


def spearman(x: Any, y: Any) -> tuple[float, float]:
    r"""Spearman rank correlation :math:`\rho` and its two-sided p-value.

    Pearson correlation of the (average-tie) ranks; p-value from scipy's t
    approximation. Used by Bao et al. and P2L to compare rankings.

    Parameters
    ----------
    x, y : array-like of shape (n,)
        Paired values, n >= 3, finite, neither constant.

    Returns
    -------
    (float, float)
        ``(rho, p_value)``.

    Raises
    ------
    TypeError, ValueError
        As :func:`pearson`.

    Examples
    --------
    >>> rho, p = spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])
    >>> round(rho, 3), round(p, 3)
    (0.8, 0.104)
    """
    from scipy.stats import spearmanr

    a, b = _pair(x, y)
    result = spearmanr(a, b)
    return float(result.statistic), float(result.pvalue)


def kendall(x: Any, y: Any) -> tuple[float, float]:
    r"""Kendall's :math:`\tau_b` and its two-sided p-value (``scipy.stats.kendalltau``).

    Parameters
    ----------
    x, y : array-like of shape (n,)
        Paired values, n >= 3, finite, neither constant.

    Returns
    -------
    (float, float)
        ``(tau, p_value)``.

    Raises
    ------
    TypeError, ValueError
        As :func:`pearson`.

    Examples
    --------
    >>> kendall([1, 2, 3, 4], [1, 3, 2, 4])[0]
    0.6666666666666669
    """
    from scipy.stats import kendalltau

    a, b = _pair(x, y)
    result = kendalltau(a, b)
    return float(result.statistic), float(result.pvalue)


def weighted_kendall(x: Any, y: Any) -> tuple[float, None]:
    r"""Weighted Kendall :math:`\tau_w` (Vigna 2015, ``scipy.stats.weightedtau``).

    Exchanges of highly ranked elements weigh more (hyperbolic weights
    :math:`1/(r+1)`, ranks taken from the larger of the two orders, so "top" means a
    large value), as used to evaluate transferability scores where picking the best
    models matters most.

    Parameters
    ----------
    x, y : array-like of shape (n,)
        Paired values, n >= 3, finite, neither constant.

    Returns
    -------
    (float, None)
        ``(tau_w, None)``: scipy defines no p-value for this statistic, so the second
        element is ``None`` (not NaN), keeping the ``(statistic, p_value)`` shape of the
        other correlations.

    Raises
    ------
    TypeError, ValueError
        As :func:`pearson`.

    Examples
    --------
    >>> tau, p = weighted_kendall([1, 2, 3, 4], [1, 2, 4, 3])  # the top two swapped
    >>> round(tau, 4), p
    (0.52, None)
    """
    from scipy.stats import weightedtau

    a, b = _pair(x, y)
    return float(weightedtau(a, b).statistic), None
