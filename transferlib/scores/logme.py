"""LogME: the log of the maximum marginal evidence of a Bayesian linear head.

You, Liu, Wang & Long, "LogME: Practical Assessment of Pre-trained Models for
Transfer Learning", ICML 2021.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from transferlib.scores._backend import Namespace, namespace
from transferlib.scores._validation import (
    as_features,
    as_labels,
    check_same_length,
    require_classes,
)

__all__ = ["logme"]


@dataclass(frozen=True)
class _Evidence:
    """Per-class converged hyper-parameters and log evidences (for tests and diagnostics)."""

    alpha: np.ndarray
    beta: np.ndarray
    log_evidence: np.ndarray
    iterations: int


def _spectrum(
    xp: Namespace, f: Any, codes: Any, targets: Any, gram: str, rtol: float
) -> tuple[Any, Any, Any]:
    r"""Non-zero eigenvalues :math:`\sigma_i` of :math:`F^\top F`, projections
    :math:`z_i = u_i^\top y` of every target column on the left singular vectors, and
    :math:`\|(I - UU^\top)y\|^2`, the part of each target outside the range of :math:`F`.

    ``gram="features"`` decomposes the :math:`D \times D` matrix :math:`F^\top F` and uses
    :math:`u_i = F v_i / \sqrt{\sigma_i}`; ``"samples"`` decomposes the :math:`n \times n`
    matrix :math:`F F^\top` whose eigenvectors are the :math:`u_i` directly. The outside
    part is formed explicitly (one GEMM) rather than as :math:`\|y\|^2 - \|z\|^2`, whose
    cancellation error would be multiplied by a large :math:`\beta`.
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
    xp: Namespace, sigma: Any, z: Any, outside: Any, n: int, d: int, max_iter: int, tol: float
) -> _Evidence:
    r"""MacKay's evidence fixed point for all target columns at once (You et al. Alg. 1).

    Stops when no class's per-sample log evidence moves by more than ``tol``; this is
    robust when a class is best explained by :math:`w = 0`, where :math:`\alpha` keeps
    growing geometrically while the evidence has converged.
    """
    k = z.shape[1]
    sigma_col = sigma[:, None]
    z2 = z * z

    def evaluate(alpha: Any, beta: Any) -> tuple[Any, Any, Any, Any]:
        denominator = alpha + beta * sigma_col
        gamma = xp.sum(beta * sigma_col / denominator, axis=0)
        m2 = xp.sum(beta**2 * sigma_col * z2 / denominator**2, axis=0)
        residual2 = xp.sum((alpha * z / denominator) ** 2, axis=0) + outside
        # log|A| over all D directions: the D - r null directions of F give log(alpha).
        log_det = xp.sum(xp.log(denominator), axis=0) + (d - sigma.shape[0]) * xp.log(alpha)
        evidence = (
            0.5 * n * xp.log(beta)
            + 0.5 * d * xp.log(alpha)
            - 0.5 * n * math.log(2 * math.pi)
            - 0.5 * beta * residual2
            - 0.5 * alpha * m2
            - 0.5 * log_det
        )
        return gamma, m2, residual2, evidence

    alpha = xp.asarray(np.ones(k))
    beta = xp.asarray(np.ones(k))
    gamma, m2, residual2, evidence = evaluate(alpha, beta)
    iterations = 0
    for iterations in range(1, max_iter + 1):
        alpha = gamma / xp.maximum(m2, 1e-300)
        beta = (n - gamma) / xp.maximum(residual2, 1e-300)
        gamma, m2, residual2, new_evidence = evaluate(alpha, beta)
        change = xp.item(xp.max(xp.abs(new_evidence - evidence))) / n
        evidence = new_evidence
        if change < tol:
            break
    return _Evidence(xp.to_numpy(alpha), xp.to_numpy(beta), xp.to_numpy(evidence), iterations)


def _logme_evidence(
    features: Any, target_labels: Any, gram: str, rtol: float | None, max_iter: int, tol: float
) -> _Evidence:
    xp = namespace(features)
    f = as_features(features, xp)
    codes, classes = as_labels(target_labels, "target_labels")
    n, d = check_same_length(features=f, target_labels=codes), f.shape[1]
    require_classes(len(classes), 2)
    if gram == "auto":
        gram = "features" if d <= n else "samples"
    if gram not in ("features", "samples"):
        raise ValueError(f"gram must be 'auto', 'features' or 'samples', got {gram!r}")
    codes_xp = xp.asarray(codes, "int")
    targets = xp.one_hot(codes_xp, len(classes))
    tol_rank = max(n, d) * float(np.finfo(np.float64).eps) if rtol is None else rtol
    sigma, z, outside = _spectrum(xp, f, codes_xp, targets, gram, tol_rank)
    return _fixed_point(xp, sigma, z, outside, n, d, max_iter, tol)


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
        Eigenvalues below ``rtol * max`` are treated as exact zeros (they then enter
        :math:`\log|A|` as :math:`\log\alpha`). Default ``max(n, D) * eps``.
    max_iter, tol : int, float
        Fixed-point limit, and tolerance on the change of every class's per-sample log
        evidence between iterations.

    Returns
    -------
    float
        LogME (nats per sample, averaged over classes).

    Notes
    -----
    One eigendecomposition of the smaller Gram matrix is shared by all classes; in its
    eigenbasis every quantity is a sum over :math:`r = \mathrm{rank}(F)` terms, so each
    fixed-point iteration costs :math:`O(r|\mathcal Y|)` for all classes at once. Total
    :math:`O(nD\min(n,D) + \min(n,D)^3)`. When :math:`n < D`, :math:`F^\top F` has
    :math:`D - r` zero eigenvalues whose :math:`\log(\alpha + \beta\cdot 0)` terms are kept
    here; a widely copied implementation sums :math:`\log|A|` over the :math:`n` non-zero
    singular values only, which changes the evidence whenever :math:`n < D`.

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
    evidence = _logme_evidence(features, target_labels, gram, rtol, max_iter, tol)
    n = as_labels(target_labels, "target_labels")[0].shape[0]
    return float(np.mean(evidence.log_evidence) / n)
