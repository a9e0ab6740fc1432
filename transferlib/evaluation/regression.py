"""Least-squares line with a t-based confidence band (Tran et al. Fig. 2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from transferlib.evaluation._validation import as_pair, as_vector

__all__ = ["LinearFit", "linear_fit_with_ci"]


@dataclass(frozen=True)
class LinearFit:
    r"""Ordinary least-squares fit :math:`y = a + bx` and what its band needs.

    Attributes
    ----------
    slope, intercept : float
        :math:`b` and :math:`a`.
    r, p_value : float
        Pearson correlation and the two-sided p-value of :math:`H_0: b = 0`.
    n : int
        Number of points.
    level : float
        Confidence level of :meth:`band`.
    x_mean, sxx, residual_std : float
        :math:`\bar x`, :math:`\sum (x_i - \bar x)^2` and
        :math:`s = \sqrt{\mathrm{RSS}/(n - 2)}`.
    """

    slope: float
    intercept: float
    r: float
    p_value: float
    n: int
    level: float
    x_mean: float
    sxx: float
    residual_std: float

    def band(self, x_grid: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r"""Fitted line and confidence band of the mean response on ``x_grid``.

        .. math:: \hat y(x) \pm t_{(1+\text{level})/2,\, n-2}\; s
                  \sqrt{\frac1n + \frac{(x - \bar x)^2}{S_{xx}}}

        Returns
        -------
        (fit, lower, upper) : three ndarrays shaped like ``x_grid``.
        """
        from scipy.stats import t

        x = as_vector(x_grid, "x_grid")
        fit = self.intercept + self.slope * x
        half = (
            t.ppf(0.5 + self.level / 2, self.n - 2)
            * self.residual_std
            * np.sqrt(1.0 / self.n + (x - self.x_mean) ** 2 / self.sxx)
        )
        return fit, fit - half, fit + half


def linear_fit_with_ci(x: Any, y: Any, level: float = 0.95) -> LinearFit:
    r"""Fit :math:`y = a + bx` by least squares, with what is needed for a confidence band.

    The regression-with-band plots of Tran et al. (2019, Fig. 2, 3, 6) show the fitted
    line, the t-based confidence band of the mean response (see
    :meth:`LinearFit.band`) and the correlation with its p-value.

    Parameters
    ----------
    x, y : array-like of shape (n,)
        Paired values; n >= 3 (two points leave no residual degrees of freedom), x not
        constant.
    level : float
        Confidence level in (0, 1).

    Returns
    -------
    LinearFit

    Examples
    --------
    >>> fit = linear_fit_with_ci([0, 1, 2, 3], [1, 3, 5, 7.5])
    >>> round(fit.slope, 3), fit.n
    (2.15, 4)
    """
    from scipy.stats import linregress

    a, b = as_pair(x, y, ("x", "y"), minimum=3)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if np.ptp(a) == 0:
        raise ValueError("x is constant; the slope is undefined")
    result = linregress(a, b)
    residuals = b - (result.intercept + result.slope * a)
    x_mean = float(a.mean())
    return LinearFit(
        slope=float(result.slope),
        intercept=float(result.intercept),
        r=float(result.rvalue),
        p_value=float(result.pvalue),
        n=int(a.size),
        level=float(level),
        x_mean=x_mean,
        sxx=float(((a - x_mean) ** 2).sum()),
        residual_std=float(np.sqrt((residuals**2).sum() / (a.size - 2))),
    )
