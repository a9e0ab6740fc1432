"""TransRate: mutual information between features and labels via coding rates.

Huang, Huang, Ren, Wang & Li, "Frustratingly Easy Transferability Estimation",
ICML 2022 (coding rate from Ma et al. 2007 / Yu et al. 2020).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from transferlib.scores._backend import Namespace
from transferlib.scores._inputs import centre, feature_inputs, normalised
from transferlib.validation import check_real

__all__ = ["transrate"]


def _coding_rate(xp: Namespace, z: Any, log_eps: float, rtol: float) -> float:
    r""":math:`R(Z, \varepsilon) = \frac12 \log\det(I + sG)`, :math:`s = 1/(m\varepsilon^2)`,
    for the smaller Gram matrix :math:`G` of the (m, d) rows ``z``
    (:math:`\det(I_d + sZ^\top Z) = \det(I_m + sZZ^\top)`), given :math:`\log\varepsilon`
    so that no power of :math:`\varepsilon` over- or underflows.

    One Cholesky factorisation: of :math:`I + sG` while :math:`s\|G\|_F \le 1`, else of
    :math:`G + s^{-1}I`, using :math:`\log\det(I + sG) = p\log s + \log\det(G + s^{-1}I)`
    (:math:`p` the order of :math:`G`), neither of which cancels digits. When :math:`s^{-1}`
    falls below the rounding level ``rtol * ||G||_F`` (tiny :math:`\varepsilon`) the
    regulariser no longer dominates rounding, and the eigenvalues of :math:`G` are used,
    those at or below that level counting as exact zeros (:math:`\log(1 + s\cdot 0) = 0`).
    """
    gram = xp.gram(z)
    norm = xp.frobenius(gram)
    if norm == 0.0:
        return 0.0
    log_s = -math.log(z.shape[0]) - 2.0 * log_eps
    if log_s + math.log(norm) <= 0.0:
        factor = xp.cholesky(xp.add_diagonal(math.exp(log_s) * gram, 1.0))
        if factor is not None:
            return xp.log_diagonal_sum(factor)
    elif -log_s > math.log(rtol * norm):
        factor = xp.cholesky(xp.add_diagonal(gram, math.exp(-log_s)))
        if factor is not None:
            return 0.5 * gram.shape[0] * log_s + xp.log_diagonal_sum(factor)
    eigenvalues = xp.to_numpy(xp.eigvalsh(gram))
    kept = eigenvalues[eigenvalues > rtol * norm]
    return 0.5 * float(np.logaddexp(0.0, log_s + np.log(kept)).sum())


def transrate(features: Any, target_labels: Any, eps: float = 1e-2) -> float:
    r"""TransRate :math:`\mathrm{TrR} = R(Z, \varepsilon) - R(Z, \varepsilon \mid Y)`.

    .. math:: R(Z, \varepsilon) = \frac12 \log\det\Big(I_d + \frac{1}{n\varepsilon^2}
              Z^\top Z\Big), \qquad
              R(Z, \varepsilon \mid Y) = \sum_{y} \frac{n_y}{n} R(Z_y, \varepsilon)

    where :math:`Z` are the features centred by their global mean and :math:`Z_y` the
    rows of class :math:`y`. The coding rate approximates the entropy of the
    features quantised at precision :math:`\varepsilon`, so TrR approximates
    :math:`I(Z; Y)`. Higher is better.

    Parameters
    ----------
    features : array-like or tensor of shape (n, d)
        Source features on the target inputs.
    target_labels : array-like of shape (n,)
        Target labels; at least two classes.
    eps : float
        Distortion :math:`\varepsilon > 0`, finite. The default 1e-2 makes
        :math:`\varepsilon^2 = 10^{-4}`, the constant of the authors' released code.

    Returns
    -------
    float
        TransRate in nats. It depends on the feature scale only through
        :math:`Z/\varepsilon` (:math:`\mathrm{TrR}(cZ, c\varepsilon) =
        \mathrm{TrR}(Z, \varepsilon)`), and grows like :math:`\log(1/\varepsilon)` times
        a difference of ranks as :math:`\varepsilon \to 0`.

    Raises
    ------
    TypeError
        Non-numeric features, labels of mixed kinds, ``eps`` not a real number.
    ValueError
        Wrong shapes or lengths, NaN/inf, fewer than two classes, ``eps`` not positive
        and finite.

    Notes
    -----
    Normalisation followed: features are centred (global mean removed) and not
    rescaled, as in the authors' code, so the value depends on the feature scale
    relative to :math:`\varepsilon`; the :math:`d` factor of the MCR^2 coding rate is
    not used (the authors' code omits it). Class terms are weighted by :math:`n_y/n`,
    the rate of coding each class separately; the authors' code averages classes
    uniformly, which is identical for balanced targets.

    Extreme values: features of extreme magnitude are scaled by an exact power of two
    :math:`c` together with :math:`\varepsilon`, and :math:`\log\varepsilon` is carried
    instead of :math:`\varepsilon^2`, so ``eps=1e-170`` or features of size 1e150 neither
    overflow nor divide by zero. When :math:`n\varepsilon^2` falls below the rounding
    level of a Gram matrix (relative ``max(n, d) * eps_machine``), eigenvalues at that
    level count as zeros, since rounding could not tell them from zero.

    Each log-determinant is one Cholesky factorisation of the smaller Gram matrix,
    :math:`d \times d` or :math:`n_y \times n_y`: cost :math:`O(nd\min(n, d) + \min(n,d)^3 +
    \sum_y n_y d \min(n_y, d))`.

    References
    ----------
    Huang et al. (2022), ICML, eq. 4-6; Yu et al. (2020), NeurIPS (MCR^2).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1, 2], 20)
    >>> x = rng.standard_normal((60, 4)) + 2 * np.eye(3, 4)[y]
    >>> round(transrate(x, y, eps=1.0), 4)
    0.0795
    """
    eps = check_real(eps, "eps", minimum=0.0, strict_minimum=True)
    xp, f, codes, k = feature_inputs(features, target_labels)
    n, d = f.shape
    rtol = max(n, d) * float(np.finfo(np.float64).eps)
    f, exponent, _ = normalised(xp, f)
    z = centre(xp, f)
    log_eps = math.log(eps) - exponent * math.log(2.0)  # TrR(cZ, c eps) = TrR(Z, eps)
    codes_np = xp.to_numpy(codes)
    order = np.argsort(codes_np, kind="stable")
    bounds = np.searchsorted(codes_np[order], np.arange(k + 1))
    conditional = sum(
        (hi - lo) / n * _coding_rate(xp, z[xp.asarray(order[lo:hi], "int")], log_eps, rtol)
        for lo, hi in itertools.pairwise(bounds)
    )
    return float(_coding_rate(xp, z, log_eps, rtol) - conditional)
