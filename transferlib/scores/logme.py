"""LogME: the log of the maximum marginal evidence of a Bayesian linear head.

You, Liu, Wang & Long, "LogME: Practical Assessment of Pre-trained Models for
Transfer Learning", ICML 2021.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from transferlib.scores._backend import Namespace
from transferlib.scores._inputs import feature_inputs, normalised
from transferlib.validation import check_choice, check_int, check_real

__all__ = ["logme"]

_GRAMS = ("auto", "features", "samples")
#: gamma (an effective number of parameters) within this of 0, or of n, means the iterates
#: head for a boundary of (alpha, beta), which they approach only slowly; its limit is then
#: evaluated in closed form.
_GAMMA_EDGE = 1e-3


def _spectrum(
    xp: Namespace, f: Any, codes: Any, targets: Any, gram: str, rtol: float
) -> tuple[Any, Any, Any]:
    r"""Non-zero eigenvalues :math:`\sigma_i` of :math:`F^\top F`, projections
    :math:`z_i = u_i^\top y` of every target column on the left singular vectors, and
    :math:`\|(I - UU^\top)y\|^2`, the part of each target outside the range of :math:`F`.

    ``gram="features"`` decomposes the :math:`D \times D` matrix :math:`F^\top F` and uses
    :math:`u_i = F v_i / \sqrt{\sigma_i}`; ``"samples"`` decomposes the :math:`n \times n`
    matrix :math:`F F^\top` whose eigenvectors are the :math:`u_i` directly. Eigenvalues
    at or below ``rtol`` times the largest count as zeros. The outside part is formed
    explicitly (one GEMM) rather than as :math:`\|y\|^2 - \|z\|^2`, whose cancellation
    error would be multiplied by a large :math:`\beta`.
    """
    if gram == "features":
        sigma, v = xp.eigh(f.T @ f)
        keep = sigma > rtol * xp.item(xp.max(sigma))
        sigma, v = sigma[keep], v[:, keep]
        f_t_targets = xp.class_sums(f, codes, targets.shape[1]).T  # F^T Y for one-hot Y
        coefficients = (v.T @ f_t_targets) / sigma[:, None]  # V^T F^T y / s^2
        z = coefficients * xp.sqrt(sigma)[:, None]
        outside = targets - f @ (v @ coefficients)
    else:
        sigma, u = xp.eigh(f @ f.T)
        keep = sigma > rtol * xp.item(xp.max(sigma))
        sigma, u = sigma[keep], u[:, keep]
        z = u.T @ targets
        outside = targets - u @ z
    return sigma, z, xp.sum(outside * outside, axis=0)


def _fixed_point(
    xp: Namespace, sigma: Any, z: Any, outside: Any, n: int, max_iter: int, tol: float
) -> tuple[Any, Any, Any]:
    r"""Per-class log evidence at MacKay's fixed point, for all target columns at once
    (You et al. Alg. 1), whether each class converged, and whether it heads for a
    boundary of :math:`(\alpha, \beta)` (see :func:`_boundary_evidence`).

    A class has converged when its per-sample log evidence moves by less than ``tol``
    between iterations; iteration stops when every class has converged or heads for a
    boundary.
    """
    sigma_col = sigma[:, None]
    z2 = z * z
    r = sigma.shape[0]

    def evaluate(alpha: Any, beta: Any) -> tuple[Any, Any, Any, Any]:
        denominator = alpha + beta * sigma_col
        # beta / (alpha + beta sigma) <= 1 / sigma stays finite where beta**2 would overflow
        # (a class heading for the unbounded boundary, beta -> inf)
        shrink = beta / denominator
        gamma = xp.sum(shrink * sigma_col, axis=0)
        m2 = xp.sum(shrink**2 * sigma_col * z2, axis=0)
        residual2 = xp.sum((alpha * z / denominator) ** 2, axis=0) + outside
        # log|A| over all D directions: the D - r null directions of F give log(alpha),
        # so only r of the D/2 log(alpha) prior terms remain.
        evidence = (
            0.5 * n * xp.log(beta)
            + 0.5 * r * xp.log(alpha)
            - 0.5 * n * math.log(2 * math.pi)
            - 0.5 * beta * residual2
            - 0.5 * alpha * m2
            - 0.5 * xp.sum(xp.log(denominator), axis=0)
        )
        return gamma, m2, residual2, evidence

    alpha = beta = xp.asarray(np.ones(z.shape[1]))
    gamma, m2, residual2, evidence = evaluate(alpha, beta)
    converged = to_boundary = None
    for _ in range(max_iter):
        alpha = gamma / xp.maximum(m2, 1e-300)
        beta = (n - gamma) / residual2
        gamma, m2, residual2, new_evidence = evaluate(alpha, beta)
        converged = xp.abs(new_evidence - evidence) < tol * n
        # gamma (effective number of parameters, in [0, rank]) shows where a slow class
        # is heading: 0 is w = 0 (alpha -> inf); with rank n, n is an exact fit
        # (beta -> inf)
        to_boundary = (gamma < _GAMMA_EDGE) | ((n - gamma < _GAMMA_EDGE) & (r == n))
        evidence = new_evidence
        if bool((converged | to_boundary).all()):
            break
    return evidence, converged, to_boundary


def _boundary_evidence(xp: Namespace, sigma: Any, z: Any, counts: Any, n: int) -> Any:
    r"""Per-class supremum of the evidence on the boundary of :math:`(\alpha, \beta)`.

    :math:`\alpha \to \infty` (:math:`w = 0`, noise only, :math:`\beta = n/\|y\|^2`):
    :math:`\frac n2 \log\frac{n}{\|y\|^2} - \frac n2 \log 2\pi - \frac n2`.
    :math:`\beta \to \infty`, reachable with a finite value only when
    :math:`\mathrm{rank}\,F = n`: :math:`y \sim \mathcal N(0, FF^\top/\alpha)`, maximised
    at :math:`\alpha = n/q`, :math:`q = \sum_i z_i^2/\sigma_i`:
    :math:`-\frac n2 \log 2\pi - \frac12 \sum_i \log\sigma_i + \frac n2 \log\frac nq
    - \frac n2`. The fixed point approaches either only slowly (geometrically in
    :math:`\alpha`, like :math:`1/\beta`), so they are evaluated directly.
    """
    constant = -0.5 * n * (math.log(2 * math.pi) + 1.0)
    noise_only = 0.5 * n * xp.log(n / counts) + constant
    if sigma.shape[0] < n:
        return noise_only
    q = xp.sum(z * z / sigma[:, None], axis=0)
    interpolating = 0.5 * n * xp.log(n / q) - 0.5 * xp.item(xp.sum(xp.log(sigma))) + constant
    return xp.where(interpolating > noise_only, interpolating, noise_only)


def logme(
    features: Any,
    target_labels: Any,
    *,
    gram: str = "auto",
    rtol: float | None = None,
    max_iter: int = 1000,
    tol: float = 1e-12,
) -> float:
    r"""LogME: mean per-sample log evidence of a Bayesian linear model (You et al. 2021).

    For each class :math:`c` the one-hot target column :math:`y_c` is modelled as
    :math:`y = Fw + \varepsilon`, :math:`w \sim \mathcal N(0, \alpha^{-1}I_D)`,
    :math:`\varepsilon \sim \mathcal N(0, \beta^{-1}I_n)`. With
    :math:`A = \alpha I + \beta F^\top F` and :math:`m = \beta A^{-1}F^\top y`,

    .. math:: \log p(y \mid F, \alpha, \beta) = \frac n2 \log\beta + \frac D2 \log\alpha
              - \frac n2 \log 2\pi - \frac\beta2 \|Fm - y\|^2 - \frac\alpha2 m^\top m
              - \frac12 \log|A|

    is maximised over :math:`(\alpha, \beta)` by the fixed point
    :math:`\gamma = \sum_i \frac{\beta\sigma_i}{\alpha + \beta\sigma_i}`,
    :math:`\alpha \leftarrow \gamma / m^\top m`,
    :math:`\beta \leftarrow (n - \gamma)/\|Fm - y\|^2` (:math:`\sigma_i` the eigenvalues
    of :math:`F^\top F`), and

    .. math:: \mathrm{LogME} = \frac{1}{|\mathcal Y|} \sum_c \frac1n
              \log p(y_c \mid F, \alpha_c^*, \beta_c^*).

    Higher is better.

    Parameters
    ----------
    features : array-like or tensor of shape (n, D)
        Source features on the target inputs (used as given: not centred, no bias,
        as in the paper).
    target_labels : array-like of shape (n,)
        Target labels; at least two classes.
    gram : {"auto", "features", "samples"}
        Decompose :math:`F^\top F` (:math:`D \times D`) or :math:`FF^\top`
        (:math:`n \times n`); ``"auto"`` takes the smaller. Both give the same value.
    rtol : float, optional
        Eigenvalues at or below ``rtol * max`` (``rtol`` in [0, 1)) are treated as exact
        zeros (they then enter :math:`\log|A|` as :math:`\log\alpha`). Default
        ``max(n, D) * eps``; ``rtol=0`` keeps every positive eigenvalue, rounding noise
        included.
    max_iter : int
        Fixed-point iteration limit, >= 1. If it is reached before a class converges
        (or heads for a boundary, see Notes), a RuntimeWarning says so and the evidence
        of the last iterate is returned.
    tol : float
        Tolerance (>= 0) on the change of every class's per-sample log evidence between
        iterations.

    Returns
    -------
    float
        LogME (nats per sample, averaged over classes); scale invariant (the prior
        precision absorbs the scale), so features of any magnitude give the same value.
        All-zero features give the evidence of the noise-only model.

    Raises
    ------
    TypeError
        Non-numeric features, labels of mixed kinds, parameters of the wrong type.
    ValueError
        Wrong shapes or lengths, NaN/inf, fewer than two classes, parameters out of
        range, and **unbounded evidence**: when a one-hot target column lies in the
        range of :math:`F` (its part outside the range is at or below ``rtol`` times its
        squared norm) and :math:`n > \mathrm{rank}\,F`, the evidence grows without
        bound as :math:`\beta \to \infty` (a linear head fits that class exactly and the
        noise-free model is infinitely more likely); LogME would be :math:`+\infty`. This
        is raised rather than returned so that an infinite score never enters an
        average unnoticed; such features separate the classes perfectly.

    Notes
    -----
    One eigendecomposition of the smaller Gram matrix is shared by all classes; in its
    eigenbasis every quantity is a sum over :math:`r = \mathrm{rank}(F)` terms, so each
    fixed-point iteration costs :math:`O(r|\mathcal Y|)` for all classes at once. Total
    :math:`O(nD\min(n,D) + \min(n,D)^3)`. When :math:`n < D`, :math:`F^\top F` has
    :math:`D - r` zero eigenvalues whose :math:`\log(\alpha + \beta\cdot 0)` terms are kept
    here; a widely copied implementation sums :math:`\log|A|` over the :math:`n` non-zero
    singular values only, which changes the evidence whenever :math:`n < D`. Features
    of extreme magnitude are first scaled by an exact power of two.

    Boundaries: the maximum may lie on the boundary of :math:`(\alpha, \beta)`, where
    the fixed point converges only slowly: :math:`\alpha \to \infty` (the class is best
    explained by :math:`w = 0`; the effective number of parameters :math:`\gamma \to 0`)
    and, when :math:`\mathrm{rank}\,F = n`, :math:`\beta \to \infty` (an exact fit,
    :math:`\gamma \to n`). Once :math:`\gamma` is within :math:`10^{-3}` of either end,
    the class's evidence is the larger of the iterate and the boundary's limit in closed
    form (noise-only model; :math:`y \sim \mathcal N(0, FF^\top/\alpha)` at the best
    :math:`\alpha`). All-zero features leave only the noise-only model.

    References
    ----------
    You, Liu, Wang, Long (2021), ICML, Sec. 4 and Algorithm 1; MacKay (1992).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1, 2], 20)
    >>> x = rng.standard_normal((60, 4)) + 2 * np.eye(3, 4)[y]
    >>> round(logme(x, y), 4)
    -0.5605
    """
    check_choice(gram, "gram", _GRAMS)
    rtol = check_real(rtol, "rtol", minimum=0.0, maximum=1.0, strict_maximum=True, allow_none=True)
    check_int(max_iter, "max_iter", minimum=1)
    check_real(tol, "tol", minimum=0.0)
    xp, f, codes, k = feature_inputs(features, target_labels)
    n, d = f.shape
    f, _, exponent = normalised(xp, xp.asarray(f))  # float64: no centring pass to convert in
    if gram == "auto":
        gram = "features" if d <= n else "samples"
    targets = xp.one_hot(codes, k)
    tol_rank = max(n, d) * float(np.finfo(np.float64).eps) if rtol is None else rtol
    sigma, z, outside = _spectrum(xp, f, codes, targets, gram, tol_rank)
    # the eigenvalues of (2**-r F)^T (2**-r F): the fixed point then starts at alpha = 1
    # relative to the feature scale, so every scale reaches the same maximum
    sigma = xp.ldexp(sigma, -2 * exponent)
    in_range = outside <= tol_rank * xp.sum(targets, axis=0)  # ||y_c||^2 = n_c
    if n > sigma.shape[0] and bool(in_range.any()):
        raise ValueError(
            f"logme: the evidence is unbounded (LogME = +inf) because target class "
            f"{int(xp.argmax(in_range * 1.0))} lies in the span of the features with "
            f"n={n} > rank={sigma.shape[0]}: a linear head fits it exactly"
        )
    counts = xp.sum(targets, axis=0)
    boundary = _boundary_evidence(xp, sigma, z, counts, n)
    if sigma.shape[0] == 0:  # all-zero features: only the noise model remains
        return xp.item(xp.sum(boundary)) / (k * n)
    evidence, converged, to_boundary = _fixed_point(xp, sigma, z, outside, n, max_iter, tol)
    if bool((~converged & ~to_boundary).any()):
        warnings.warn(
            f"logme: the evidence fixed point did not converge to tol={tol:g} within "
            f"max_iter={max_iter} iterations; the value is that of the last iterate",
            RuntimeWarning,
            stacklevel=2,
        )
    evidence = xp.where(to_boundary & (boundary > evidence), boundary, evidence)
    return xp.item(xp.sum(evidence)) / (k * n)
