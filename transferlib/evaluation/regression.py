"""Least-squares line with a t-based confidence band (Tran et al. Fig. 2)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from transferlib.validation import as_float_array, as_vector_pair, binary_exponent, check_real

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
    x_mean, x_spread, residual_std : float
        :math:`\bar x`, :math:`\sqrt{S_{xx}} = \sqrt{\sum (x_i - \bar x)^2}` (kept as a
        root so it is representable whenever :math:`x` is) and
        :math:`s = \sqrt{\mathrm{RSS}/(n - 2)}`.
    """

    slope: float
    intercept: float
    r: float
    p_value: float
    n: int
    level: float
    x_mean: float
    x_spread: float
    residual_std: float

    def band(self, x_grid: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r"""Fitted line and confidence band of the mean response on ``x_grid``.

        .. math:: \hat y(x) \pm t_{(1+\text{level})/2,\, n-2}\; s
                  \sqrt{\frac1n + \frac{(x - \bar x)^2}{S_{xx}}}

        Parameters
        ----------
        x_grid : array-like of shape (m,)
            Finite points where the line and band are evaluated.

        Returns
        -------
        (fit, lower, upper) : three ndarrays of shape (m,).

        Raises
        ------
        TypeError
            Non-numeric ``x_grid``.
        ValueError
            ``x_grid`` not 1-D, empty or with NaN/inf, or so far from the data that the
            line or band leaves the float64 range.
        """
        from scipy.stats import t

        x = as_float_array(x_grid, "x_grid", ndim=1, numpy=True)
        with np.errstate(over="ignore"):  # reported below, with the cause
            fit = self.intercept + self.slope * x
            # hypot(1/sqrt(n), |x - mean| / sqrt(Sxx)) never squares a large ratio
            spread = np.hypot(1.0 / math.sqrt(self.n), np.abs(x - self.x_mean) / self.x_spread)
            half = t.ppf(0.5 + self.level / 2, self.n - 2) * self.residual_std * spread
            lower, upper = fit - half, fit + half
        if not (np.isfinite(lower).all() and np.isfinite(upper).all()):
            raise ValueError("x_grid is so far from the data that the band exceeds float64")
        return fit, lower, upper


def linear_fit_with_ci(x: Any, y: Any, level: float = 0.95) -> LinearFit:
    r"""Fit :math:`y = a + bx` by least squares, with what is needed for a confidence band.

    The regression-with-band plots of Tran et al. (2019, Fig. 2, 3, 6) show the fitted
    line, the t-based confidence band of the mean response (see
    :meth:`LinearFit.band`) and the correlation with its p-value.

    Parameters
    ----------
    x, y : array-like of shape (n,)
        Paired values; n >= 3 (two points leave no residual degrees of freedom), x not
        constant; any finite magnitude.
    level : float
        Confidence level in (0, 1).

    Returns
    -------
    LinearFit
        For a constant ``y`` the line is flat and exact; its correlation is undefined
        (0/0) and is reported as ``r = 0.0`` with ``p_value = 1.0`` by convention (no
        linear association can be measured), not as NaN.

    Raises
    ------
    TypeError
        Non-numeric input, ``level`` not a real number.
    ValueError
        Not 1-D, unequal lengths, fewer than 3 points, NaN/inf, a constant ``x``,
        ``level`` outside (0, 1), a slope or intercept beyond the float64 range (e.g.
        ``x`` spread over 1e-300 and ``y`` over 1e300).

    Notes
    -----
    The fit is computed on ``x`` and ``y`` scaled by exact powers of two and mapped
    back, so inputs near 1e-170 or 1e150 neither underflow nor overflow. The p-value is
    the t-test of Pearson's r with n - 2 degrees of freedom (as ``scipy.stats.linregress``).

    Examples
    --------
    >>> fit = linear_fit_with_ci([0, 1, 2, 3], [1, 3, 5, 7.5])
    >>> round(fit.slope, 3), fit.n
    (2.15, 4)
    """
    from scipy.stats import t

    a, b = as_vector_pair(x, y, ("x", "y"), minimum=3)
    level = check_real(
        level, "level", minimum=0.0, maximum=1.0, strict_minimum=True, strict_maximum=True
    )
    if a.min() == a.max():
        raise ValueError("x is constant; the slope is undefined")
    ex = binary_exponent(float(np.abs(a).max()))
    ey = binary_exponent(float(np.abs(b).max()))
    xs, ys = np.ldexp(a, -ex), np.ldexp(b, -ey)
    x_mean, y_mean = xs.mean(), ys.mean()
    dx, dy = xs - x_mean, ys - y_mean
    sxx, syy = float(dx @ dx), float(dy @ dy)
    slope = float(dx @ dy) / sxx
    intercept = y_mean - slope * x_mean
    residuals = ys - (intercept + slope * xs)
    df = a.size - 2
    if syy > 0:
        r = min(max(float(dx @ dy) / math.sqrt(sxx * syy), -1.0), 1.0)
        p_value = (
            0.0 if abs(r) == 1.0 else float(2 * t.sf(abs(r) * math.sqrt(df / (1 - r * r)), df))
        )
    else:
        r, p_value = 0.0, 1.0
    with np.errstate(over="ignore"):  # reported below, with the cause
        fit = LinearFit(
            slope=float(np.ldexp(slope, ey - ex)),
            intercept=float(np.ldexp(intercept, ey)),
            r=r,
            p_value=p_value,
            n=int(a.size),
            level=level,
            x_mean=float(np.ldexp(x_mean, ex)),
            x_spread=float(np.ldexp(math.sqrt(sxx), ex)),
            residual_std=float(np.ldexp(math.sqrt(float(residuals @ residuals) / df), ey)),
        )
    if not (math.isfinite(fit.slope) and math.isfinite(fit.intercept)):
        raise ValueError("the fitted slope or intercept exceeds the float64 range")
    return fit
