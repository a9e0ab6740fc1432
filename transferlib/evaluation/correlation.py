"""Correlation coefficients between transferability scores and measured performance.

Thin, validated wrappers around :mod:`scipy.stats` that always return
``(statistic, p_value)`` as Python floats.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from transferlib.evaluation._validation import as_pair

__all__ = ["kendall", "pearson", "spearman", "weighted_kendall"]


def _pair(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    a, b = as_pair(x, y, ("x", "y"), minimum=3)
    for name, arr in (("x", a), ("y", b)):
        if np.ptp(arr) == 0:
            raise ValueError(f"{name} is constant; the correlation is undefined")
    return a, b


def pearson(x: Any, y: Any) -> tuple[float, float]:
    r"""Pearson correlation :math:`r` and its two-sided p-value (``scipy.stats.pearsonr``).

    .. math:: r = \frac{\sum_i (x_i - \bar x)(y_i - \bar y)}
              {\sqrt{\sum_i (x_i - \bar x)^2 \sum_i (y_i - \bar y)^2}}

    The p-value is the exact one for bivariate normal data (t-test with n - 2 degrees of
    freedom), as reported by LEEP (Table 1) and Tran et al. (Fig. 2).

    Parameters
    ----------
    x, y : array-like of shape (n,)
        Paired values, n >= 3, finite, neither constant.

    Returns
    -------
    (float, float)
        ``(r, p_value)``.

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
    """
    from scipy.stats import kendalltau

    a, b = _pair(x, y)
    result = kendalltau(a, b)
    return float(result.statistic), float(result.pvalue)


def weighted_kendall(x: Any, y: Any) -> tuple[float, float]:
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
    (float, float)
        ``(tau_w, nan)``: scipy defines no p-value for this statistic, so the second
        element is always NaN (the only NaN these functions return).
    """
    from scipy.stats import weightedtau

    a, b = _pair(x, y)
    return float(weightedtau(a, b).statistic), float("nan")
