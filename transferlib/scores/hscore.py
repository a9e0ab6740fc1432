"""H-score, shrinkage H-score, the normalised H-score transferability and HGR maximal
correlation.

Bao, Li, Huang, Zhang, Zheng, Zamir & Guibas, "An Information-Theoretic Approach to
Transferability in Task Transfer Learning", ICIP 2019 (Def. 1-3, eq. 4-5);
Ibrahim, Ponomareva & Mazumder, "Newer is not always better: Rethinking
transferability metrics, their peculiarities, stability and performance", 2022.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from transferlib.scores._backend import Namespace
from transferlib.scores._inputs import centre, feature_inputs, normalised
from transferlib.validation import (
    as_labels,
    check_bool,
    check_choice,
    check_int,
    check_n_classes,
    check_real,
    check_same_length,
)

__all__ = [
    "h_score",
    "h_score_transferability",
    "hgr_maximal_correlation",
    "shrinkage_h_score",
]

_METHODS = ("svd", "ace")
#: Terms of the Neumann series tried before a second Cholesky factorisation instead.
_MAX_TERMS = 8


def _rank_tolerance(rtol: Any, n: int, d: int) -> float:
    """Validated ``rtol``, or the usual numerical-rank tolerance ``max(n, d) * eps``."""
    rtol = check_real(rtol, "rtol", minimum=0.0, maximum=1.0, strict_maximum=True, allow_none=True)
    return max(n, d) * float(np.finfo(np.float64).eps) if rtol is None else rtol


def _centred(xp: Namespace, f: Any) -> Any:
    """Features minus their mean, first scaled by a power of two if their magnitude is
    extreme (every score here is scale invariant; the scaling is exact)."""
    return centre(xp, normalised(xp, f)[0])


def _between_rows(xp: Namespace, centred: Any, codes: Any, k: int) -> Any:
    r"""(k, d) rows :math:`\sqrt{p_y}(\mu_y - \mu)` from O(nd) class sums, so that
    :math:`M^\top M = \mathrm{cov}(\mathbb E[f \mid Y])`."""
    counts = xp.asarray(np.bincount(xp.to_numpy(codes), minlength=k))
    return xp.class_sums(centred, codes, k) / xp.sqrt(counts * centred.shape[0])[:, None]


def _shifted_bilinear(
    xp: Namespace, factor: Any, left: Any, right: Any, shift: float
) -> float | None:
    r""":math:`\mathrm{tr}(P^\top (LL^\top + \tau I)^{-1} Q)` from the Cholesky factor
    :math:`L` of the shifted matrix, by the Neumann series
    :math:`\sum_k (-\tau)^k \langle v_k(P), v_k(Q)\rangle`, :math:`v_0 = L^{-1}\cdot`,
    :math:`v_{k+1} = L^{-\top} v_k` or :math:`L^{-1} v_k` alternately (each term one
    triangular solve instead of a second factorisation). None when the series converges
    too slowly (:math:`\lambda_{\min}(LL^\top)` not well above :math:`\tau`).
    """
    same = left is right
    v_left = xp.solve_lower(factor, left)
    v_right = v_left if same else xp.solve_lower(factor, right)
    total = previous = xp.item(xp.sum(v_left * v_right))
    for k in range(1, _MAX_TERMS):
        v_left = xp.solve_lower(factor, v_left, transpose=k % 2 == 1)
        v_right = v_left if same else xp.solve_lower(factor, v_right, transpose=k % 2 == 1)
        term = (-shift) ** k * xp.item(xp.sum(v_left * v_right))
        total += term
        if abs(term) <= 1e-17 * abs(total):
            return total
        if abs(term) > 0.5 * abs(previous):
            return None
        previous = term
    return None


def _pinv_bilinear(
    xp: Namespace, a: Any, left: Any, right: Any, ridge: float, rtol: float
) -> float | None:
    r""":math:`\mathrm{tr}(P^\top A^{-1} Q)` when every eigenvalue of the symmetric PSD ``a``
    (containing ``ridge`` on its diagonal) exceeds :math:`\tau = \mathrm{rtol}\,\|A\|_F
    \ge \mathrm{rtol}\,\lambda_{\max}`, so the pseudo-inverse drops nothing; else None.

    A ridge above :math:`\tau` proves it and one Cholesky factorisation solves. Otherwise
    the factorisation of :math:`A - \tau I` is the proof, and the same factor solves by
    :func:`_shifted_bilinear` (a second factorisation only if that converges slowly).
    """
    threshold = rtol * xp.frobenius(a)
    if ridge <= threshold:
        shifted = xp.cholesky(xp.add_diagonal(xp.copy(a), -threshold))
        if shifted is None:
            return None
        value = _shifted_bilinear(xp, shifted, left, right, threshold)
        if value is not None:
            return value
    factor = xp.cholesky(a)
    if factor is None:
        return None
    v_left = xp.solve_lower(factor, left)
    v_right = v_left if left is right else xp.solve_lower(factor, right)
    return xp.item(xp.sum(v_left * v_right))


def _features_side(xp: Namespace, a: Any, r: Any, ridge: float, rtol: float) -> float:
    r""":math:`\mathrm{tr}(R^\top A^{+} R)` for a symmetric PSD (d, d) matrix ``a``
    (containing ``ridge`` on its diagonal).

    Pseudo-inverse semantics: eigenvalues at or below ``rtol`` times the largest are
    dropped. When nothing would be dropped, one Cholesky factorisation gives the answer
    (:func:`_pinv_bilinear`); otherwise an eigendecomposition decides.
    """
    value = _pinv_bilinear(xp, a, r, r, ridge, rtol)
    if value is not None:
        return value
    eigenvalues, eigenvectors = xp.eigh(a)
    keep = eigenvalues > rtol * xp.item(xp.max(eigenvalues))
    projected = (eigenvectors.T @ r)[keep]
    return xp.item(xp.sum(xp.sum(projected * projected, axis=1) / eigenvalues[keep]))


def _samples_side(
    xp: Namespace, gram: Any, codes: Any, k: int, ridge: float, n_scale: float, rtol: float
) -> float:
    r""":math:`\mathrm{tr}\big(W G (aI + bG)^{+} W^\top\big)` for the (n, n) Gram matrix
    :math:`G = F_cF_c^\top` of centred features, :math:`W_{yi} = 1[y_i = y]/\sqrt{n n_y}`.

    Centring makes the constant vector a null vector of :math:`G` (a structural zero),
    which is never inverted, whatever ``rtol``. With :math:`a` above the tolerance one
    Cholesky factorisation of :math:`aI + bG` solves. Otherwise :math:`G(bG)^{+} = P/b`
    with :math:`P` the projector on the range of :math:`G`: one Cholesky factorisation of
    :math:`bG + \beta\mathbf 1\mathbf 1^\top - \tau I` (the deflation moves the
    structural zero to the mean eigenvalue) proves that the range is all of
    :math:`\mathbf 1^\perp`, and then :math:`P = I - \mathbf 1\mathbf 1^\top/n` gives the
    value in closed form, :math:`(|\mathcal Y| - 1)/(nb)` with ``n_scale`` :math:`= nb`
    (exactly :math:`|\mathcal Y| - 1` for the H-score's :math:`b = 1/n`). An
    eigendecomposition, which drops the constant direction explicitly, decides the remaining
    cases.
    """
    n = gram.shape[0]
    scale = n_scale / n
    one_hot = xp.one_hot(codes, k)
    weights_t = one_hot / xp.sqrt(xp.sum(one_hot, axis=0) * n)  # W^T, (n, k)
    matrix = xp.add_diagonal(scale * gram, ridge)
    threshold = rtol * xp.frobenius(matrix)
    if ridge > threshold:
        factor = xp.cholesky(matrix)
        if factor is not None:
            solved = xp.solve_lower(factor, xp.concatenate([gram @ weights_t, weights_t]))
            return xp.item(xp.sum(solved[:, :k] * solved[:, k:]))
    else:
        matrix += scale * xp.item(xp.sum(gram.diagonal())) / n**2  # deflation
        if xp.cholesky(xp.add_diagonal(matrix, -threshold)) is not None:
            # tr(W P W^T) / b with ||w_y||^2 = 1/n and sum_y (sum_i W_yi)^2 = 1: (k - 1)/(n b),
            # exact (summing it would leave rounding noise that a correlation across tasks reads)
            return (k - 1) / n_scale
    eigenvalues, eigenvectors = xp.eigh(gram)
    denominators = ridge + scale * eigenvalues
    keep = denominators > rtol * xp.item(xp.max(denominators))
    keep[xp.argmax(xp.abs(xp.sum(eigenvectors, axis=0)))] = False  # the constant direction
    projected = (eigenvectors.T @ weights_t)[keep]
    gains = eigenvalues[keep] / denominators[keep]
    return xp.item(xp.sum(gains * xp.sum(projected * projected, axis=1)))


def _regularised_quadratic(
    xp: Namespace,
    centred: Any,
    gram: Any,
    codes: Any,
    k: int,
    ridge: float,
    n_scale: float,
    rtol: float,
) -> float:
    r"""Return :math:`\mathrm{tr}\big(W F_c (aI + b F_c^\top F_c)^{+} F_c^\top W^\top\big)`.

    ``ridge`` is :math:`a`, ``n_scale`` is :math:`nb` (1 for the H-score), ``gram`` is
    :meth:`Namespace.gram` of the centred features (overwritten). For :math:`d < n` the
    (d, d) matrix is factorised; for :math:`n \le d` the identity
    :math:`F_c (aI + bF_c^\top F_c)^{+} F_c^\top = G (aI + bG)^{+}`, :math:`G = F_cF_c^\top`,
    moves the work to the (n, n) Gram side (same non-zero spectrum, so the same tolerance
    semantics). Either way the cost is one Gram product and one or two Cholesky
    factorisations of the smaller side. Without a ridge, constant features are left out
    first (their eigenvalue 0 is dropped by any tolerance).
    """
    n, d = centred.shape
    if d >= n:
        return _samples_side(xp, gram, codes, k, ridge, n_scale, rtol)
    between = _between_rows(xp, centred, codes, k).T
    live = gram.diagonal() > 0
    if ridge == 0.0 and int(live.sum()) < d:
        # A constant feature (a dead ReLU unit) is a zero row and column of the covariance
        # and a zero row of the class means: dropping it is exact, and the rest often has
        # full rank, so Cholesky solves where the singular matrix needed an eigh.
        if not bool(live.any()):
            return 0.0
        gram, between = gram[live][:, live], between[live]
    gram *= n_scale / n
    xp.add_diagonal(gram, ridge)
    return _features_side(xp, gram, between, ridge, rtol)


def h_score(features: Any, target_labels: Any, *, rtol: float | None = None) -> float:
    r"""H-score of a feature for a classification task (Bao et al. 2019, eq. 4).

    .. math:: \mathcal H(f) = \mathrm{tr}\big(\mathrm{cov}(f(X))^{+}\,
              \mathrm{cov}(\mathbb E[f(X) \mid Y])\big)

    with both covariances normalised by :math:`1/n` (so one-hot label features score
    exactly :math:`|\mathcal Y| - 1`, the maximum) and :math:`^{+}` the Moore-Penrose
    pseudo-inverse. Higher is better.

    Parameters
    ----------
    features : array-like or tensor of shape (n, d)
        Source features :math:`f(x_i)` on the target inputs. Torch input is computed
        with torch on its own device; any real dtype, computed in float64.
    target_labels : array-like of shape (n,)
        Target labels; at least two classes.
    rtol : float, optional
        Pseudo-inverse tolerance in [0, 1): covariance eigenvalues at or below
        ``rtol * largest eigenvalue`` are dropped. Default ``max(n, d) * eps``
        (:math:`\approx 10^{-12}` for n = 5000), the usual numerical-rank tolerance.
        ``rtol=0`` keeps every positive eigenvalue, rounding noise of rank-deficient
        features included; the null direction that centring creates when
        :math:`n \le d` is never kept.

    Returns
    -------
    float
        :math:`\mathcal H(f) \in [0, |\mathcal Y| - 1]` up to rounding; invariant to
        invertible linear maps of the features, hence to their scale. When
        :math:`n \le d` and the centred features have full rank :math:`n - 1`, every
        labelling is linearly separable and the value is :math:`|\mathcal Y| - 1`.
        Constant features score 0.

    Raises
    ------
    TypeError
        Non-numeric features, labels of mixed kinds, ``rtol`` not a real number.
    ValueError
        Wrong shapes or lengths, NaN/inf, fewer than two classes, ``rtol`` outside [0, 1).

    Notes
    -----
    Computed as :math:`\mathrm{tr}(M \Sigma^{-1} M^\top)` where :math:`M` stacks
    :math:`\sqrt{p_y}(\mu_y - \mu)` (all class means from one O(nd) pass) and
    :math:`\Sigma` is the covariance (one Gram product). One Cholesky factorisation of
    :math:`\Sigma - \tau I` proves that no eigenvalue falls below the tolerance
    :math:`\tau` and, through a short Neumann series of triangular solves, also gives
    the value; if it fails, an eigendecomposition decides which eigenvalues to drop. For
    :math:`n \le d` the same quantity is computed on the :math:`n \times n` Gram matrix.
    Features of extreme magnitude (1e-170, 1e150) are first scaled by an exact power of
    two. Cost :math:`O(nd\min(n,d) + \min(n,d)^3)`. Some public copies multiply the two
    covariances element-wise instead of as matrices; this is the matrix product.

    References
    ----------
    Bao et al. (2019), ICIP, Def. 2, eq. 4.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0, 1, 2, 0, 1, 2])
    >>> round(h_score(np.eye(3)[y], y), 10)  # one-hot features: |Y| - 1
    2.0
    """
    xp, f, codes, k = feature_inputs(features, target_labels)
    n, d = f.shape
    tol = _rank_tolerance(rtol, n, d)
    centred = _centred(xp, f)
    return _regularised_quadratic(xp, centred, xp.gram(centred), codes, k, 0.0, 1.0, tol)


def _ledoit_wolf_shrinkage(xp: Namespace, centred: Any, gram: Any) -> tuple[float, float]:
    r"""Ledoit-Wolf (2004) shrinkage intensity :math:`\alpha` and target scale :math:`\mu`.

    For :math:`S = F_c^\top F_c / n`, :math:`\mu = \mathrm{tr}(S)/d`,
    :math:`\delta^2 = \|S - \mu I\|_F^2`,
    :math:`\bar\beta^2 = \frac{1}{n}\big(\frac1n\sum_i \|x_i\|^4 - \|S\|_F^2\big)`
    and :math:`\alpha = \min(\bar\beta^2, \delta^2)/\delta^2`. ``gram`` is either Gram
    matrix of the centred features (:math:`\|F_c^\top F_c\|_F = \|F_cF_c^\top\|_F`).

    When :math:`S` is (to rounding) a multiple of the identity, :math:`\delta^2 = 0` and
    :math:`\alpha = 0`, as in scikit-learn. For :math:`d < n`, :math:`\delta^2` is summed
    from the off-diagonal and centred diagonal entries of :math:`S` rather than as
    :math:`\|S\|_F^2 - d\mu^2`, whose cancellation would let rounding choose
    :math:`\alpha` (e.g. :math:`d = 1`); for :math:`n \le d`, :math:`S` has at least
    :math:`d - n + 1` zero eigenvalues, so :math:`\delta^2 \ge \mu^2` cancels nothing.
    """
    n, d = centred.shape
    s_frobenius2 = xp.frobenius(gram) ** 2 / n**2
    row_norms2 = xp.row_sq_norms(centred)
    mu = xp.item(xp.sum(row_norms2)) / (n * d)
    if d < n:
        diagonal = xp.copy(gram.diagonal()) / n
        xp.add_diagonal(gram, 0.0, zero_first=True)
        off_diagonal2 = xp.frobenius(gram) ** 2 / n**2
        xp.add_diagonal(gram, diagonal * n)  # restored
        delta2 = off_diagonal2 + xp.item(xp.sum((diagonal - mu) ** 2))
    else:
        delta2 = s_frobenius2 - d * mu**2
    beta_bar2 = max(xp.item(xp.sum(row_norms2 * row_norms2)) / n - s_frobenius2, 0.0) / n
    if delta2 <= (max(n, d) * float(np.finfo(np.float64).eps)) ** 2 * s_frobenius2:
        return 0.0, mu  # S is a multiple of the identity up to rounding
    return min(beta_bar2, delta2) / delta2, mu


def shrinkage_h_score(features: Any, target_labels: Any, *, rtol: float | None = None) -> float:
    r"""H-score with a Ledoit-Wolf shrunk feature covariance (Ibrahim et al. 2022).

    .. math:: \mathcal H_\alpha(f) = \mathrm{tr}\Big(\big((1-\alpha)S + \alpha\mu I\big)^{-1}
              (1-\alpha)\,\mathrm{cov}(\mathbb E[f \mid Y])\Big),
              \qquad \mu = \mathrm{tr}(S)/d

    where :math:`S` is the feature covariance and :math:`\alpha \in [0, 1]` the
    Ledoit-Wolf (2004) shrinkage intensity estimated from the same features.

    Parameters
    ----------
    features : array-like or tensor of shape (n, d)
        Source features on the target inputs.
    target_labels : array-like of shape (n,)
        Target labels; at least two classes.
    rtol : float, optional
        Pseudo-inverse tolerance in [0, 1) as in :func:`h_score` (only matters when
        :math:`\alpha\mu` is below it, e.g. :math:`\alpha = 0` with a singular :math:`S`).

    Returns
    -------
    float
        In :math:`[0, |\mathcal Y| - 1]` and at most :func:`h_score`; scale invariant.
        Higher is better.

    Raises
    ------
    TypeError, ValueError
        As :func:`h_score`.

    Notes
    -----
    Normalisation convention: both :math:`S` and the between-class covariance use
    :math:`1/n` (the maximum-likelihood estimates that Ledoit-Wolf shrinks) and both are
    multiplied by the same :math:`(1-\alpha)`, as Ibrahim et al. do; mixing
    :math:`1/n` and :math:`1/(n-1)` between the two terms, as some copies do, biases
    the score by :math:`n/(n-1)`. :math:`\alpha` agrees with
    ``sklearn.covariance.ledoit_wolf``. One Gram product serves both the shrinkage
    estimate and the score, and since the shrunk matrix is positive definite a single
    Cholesky factorisation follows.

    References
    ----------
    Ibrahim, Ponomareva, Mazumder (2022), ICLR submission / arXiv:2110.06893;
    Ledoit & Wolf (2004), J. Multivariate Analysis 88(2).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1, 2], 20)
    >>> x = rng.standard_normal((60, 4)) + 2 * np.eye(3, 4)[y]
    >>> round(shrinkage_h_score(x, y), 4), round(h_score(x, y), 4)
    (0.6106, 1.2457)
    """
    xp, f, codes, k = feature_inputs(features, target_labels)
    n, d = f.shape
    tol = _rank_tolerance(rtol, n, d)
    centred = _centred(xp, f)
    gram = xp.gram(centred)
    alpha, mu = _ledoit_wolf_shrinkage(xp, centred, gram)
    quadratic = _regularised_quadratic(xp, centred, gram, codes, k, alpha * mu, 1 - alpha, tol)
    return (1 - alpha) * quadratic


# -- maximal correlation of discrete variables --------------------------------------------


def _joint(x: np.ndarray, kx: int, y: np.ndarray, ky: int) -> np.ndarray:
    """(|Y|, |X|) empirical joint distribution of two code sequences."""
    return np.bincount(y * kx + x, minlength=ky * kx).reshape(ky, kx) / x.shape[0]


def _orthonormal_functions(values: np.ndarray, p: np.ndarray) -> np.ndarray:
    r"""Columns of ``values`` (functions on a finite set with probabilities ``p``) made
    zero-mean and orthonormal under :math:`\langle a, b\rangle = \sum_x p_x a_x b_x`.

    Householder QR of :math:`[\sqrt p, \sqrt p \odot \text{values}]`, signs kept, so a
    column already orthonormal to the constant and to the previous columns comes back
    unchanged up to rounding. The Q factor is orthonormal even when a column vanishes
    (a zero correlation): that column is then some zero-mean function orthonormal to
    the others, never the constant.
    """
    root = np.sqrt(p)
    q, r = np.linalg.qr(np.column_stack([root, root[:, None] * values]))
    signs = np.where(np.diag(r) < 0, -1.0, 1.0)
    return (q * signs)[:, 1:] / root[:, None]


def _svd_correlations(joint: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Top-k singular triplets of the DTM :math:`\tilde B_{y,x} = P(x,y)/\sqrt{P(x)P(y)}
    - \sqrt{P(x)P(y)}` (Bao et al. Def. 1), as correlations and functions f, g."""
    px, py = joint.sum(axis=0), joint.sum(axis=1)
    root = np.sqrt(np.outer(py, px))
    left, singular, right_t = np.linalg.svd(joint / root - root, full_matrices=False)
    f = _orthonormal_functions(right_t[:k].T / np.sqrt(px)[:, None], px)
    g = _orthonormal_functions(left[:, :k] / np.sqrt(py)[:, None], py)
    return singular[:k], f, g


def _ace(
    joint: np.ndarray, k: int, max_iter: int, tol: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Alternating conditional expectations (Breiman & Friedman 1985) for k functions.

    Iterates :math:`f \leftarrow \mathbb E[g(Y) \mid X]`, orthonormalised under
    :math:`P_X`, then :math:`g \leftarrow \mathbb E[f(X) \mid Y]` (block power iteration
    on the conditional-expectation operator with the constant function removed), and
    finally rotates the converged subspace so the pairs are the individual maximal
    correlations. Directions whose conditional expectation vanishes (correlation 0, e.g.
    independent variables) are filled with zero-mean functions orthonormal to the rest.
    """
    px, py = joint.sum(axis=0), joint.sum(axis=1)
    x_given_y = joint / py[:, None]  # row y: P(x | y)
    y_given_x = (joint / px[None, :]).T  # row x: P(y | x)
    g = _orthonormal_functions(rng.standard_normal((py.shape[0], k)), py)
    previous = None
    for _ in range(max_iter):
        f = _orthonormal_functions(y_given_x @ g, px)
        g = x_given_y @ f
        singular = np.sqrt(np.clip(np.linalg.eigvalsh(g.T @ (py[:, None] * g)), 0, None))
        if previous is not None and np.max(np.abs(singular - previous)) < tol:
            break
        previous = singular
        g = _orthonormal_functions(g, py)
    g = _orthonormal_functions(g, py)
    cross = f.T @ joint.T @ g  # E[f(X) g(Y)^T] of the orthonormal pair, before rotating
    left, correlations, right_t = np.linalg.svd(cross)
    return correlations, f @ left, g @ right_t.T


def hgr_maximal_correlation(
    x_codes: Any,
    y_codes: Any,
    k: int = 1,
    *,
    method: str = "svd",
    return_functions: bool = False,
    max_iter: int = 1000,
    tol: float = 1e-12,
    seed: int = 0,
) -> np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Top-k Hirschfeld-Gebelein-Renyi maximal correlations of two discrete variables.

    .. math:: \rho_i = \sup \mathbb E[f_i(X) g_i(Y)] \quad \text{s.t.}\quad
              \mathbb E f_i = \mathbb E g_i = 0,\ \mathbb E[f f^\top] = \mathbb E[g g^\top] = I

    (Bao et al. eq. 5). The :math:`\rho_i` are the singular values of the divergence
    transition matrix :math:`\tilde B` (Def. 1) after its trivial mode has been removed,
    so :math:`\sum_i \rho_i^2 = \|\tilde B\|_F^2`. The two variables play symmetric
    roles.

    Parameters
    ----------
    x_codes, y_codes : array-like of shape (n,)
        Paired samples of the two discrete variables (numbers, strings or bools), each
        with at least two distinct values.
    k : int
        Number of correlations, :math:`1 \le k \le \min(|\mathcal X|, |\mathcal Y|) - 1`.
    method : {"svd", "ace"}
        ``"svd"``: exact SVD of :math:`\tilde B`. ``"ace"``: alternating conditional
        expectations (Breiman & Friedman 1985), the algorithm Bao et al. cite.
    return_functions : bool
        Also return the maximal-correlation functions.
    max_iter : int
        ACE iteration limit, >= 1.
    tol : float
        ACE convergence tolerance on the correlations, >= 0.
    seed : int
        Seed (>= 0) of ACE's random start.

    Returns
    -------
    correlations : ndarray of shape (k,)
        Decreasing, in [0, 1].
    f : ndarray of shape (|X|, k), only with ``return_functions``
        :math:`f_i` evaluated on the sorted distinct x values; zero mean, unit variance,
        uncorrelated. Where :math:`\rho_i = 0` (e.g. independent variables) every such
        function attains it; the one returned is zero-mean and orthonormal to the others.
    g : ndarray of shape (|Y|, k), only with ``return_functions``
        Likewise for :math:`g_i` on the distinct y values.

    Raises
    ------
    TypeError
        Labels of mixed kinds; ``k``, ``max_iter``, ``seed`` not integers; ``tol`` not a
        real number; ``return_functions`` not a bool; ``method`` not a string.
    ValueError
        Unequal lengths, fewer than two distinct values, ``k`` out of range, unknown
        ``method``, ``max_iter < 1``, negative ``tol`` or ``seed``.

    Notes
    -----
    Cost :math:`O(n + |\mathcal X||\mathcal Y|\min(|\mathcal X|, |\mathcal Y|))` for SVD,
    :math:`O(|\mathcal X||\mathcal Y|k)` per ACE iteration.

    Examples
    --------
    >>> hgr_maximal_correlation([0, 0, 1, 1], [0, 0, 1, 1])  # Y = X
    array([1.])
    """
    check_choice(method, "method", _METHODS)
    check_bool(return_functions, "return_functions")
    check_int(max_iter, "max_iter", minimum=1)
    check_real(tol, "tol", minimum=0.0)
    check_int(seed, "seed", minimum=0)
    k = check_int(k, "k", minimum=1)
    x, x_classes = as_labels(x_codes, "x_codes")
    y, y_classes = as_labels(y_codes, "y_codes")
    check_same_length(x_codes=x, y_codes=y)
    kx, ky = len(x_classes), len(y_classes)
    check_n_classes(kx, 2, "x_codes")
    check_n_classes(ky, 2, "y_codes")
    if k > min(kx, ky) - 1:
        raise ValueError(f"k must be in [1, min(|X|, |Y|) - 1 = {min(kx, ky) - 1}], got {k}")
    joint = _joint(x, kx, y, ky)
    if method == "ace":
        correlations, f, g = _ace(joint, k, max_iter, tol, np.random.default_rng(seed))
    else:
        correlations, f, g = _svd_correlations(joint, k)
    correlations = np.clip(correlations, 0.0, 1.0)
    return (correlations, f, g) if return_functions else correlations


def h_score_transferability(
    features: Any,
    target_labels: Any,
    *,
    input_codes: Any = None,
    method: str = "svd",
    rtol: float | None = None,
) -> float:
    r"""Normalised task transferability :math:`\mathfrak T(S, T)` (Bao et al. Def. 3).

    .. math:: \mathfrak T(S, T) = \frac{\mathcal H_T(f_S)}{\mathcal H_T(f_{T,\mathrm{opt}})},
              \qquad \mathcal H_T(f_{T,\mathrm{opt}}) = \|\tilde B_T\|_F^2
              = \sum_i \rho_i^2(X; Y)

    the H-score of the source feature divided by that of the minimum-error-probability
    feature, whose value is the sum of squared HGR maximal correlations between the
    input and the target label (computed by :func:`hgr_maximal_correlation`).

    Parameters
    ----------
    features : array-like or tensor of shape (n, d)
        Source features :math:`f_S(x_i)`.
    target_labels : array-like of shape (n,)
        Target labels; at least two classes.
    input_codes : array-like of shape (n,), optional
        Discrete code of each input :math:`x_i` (e.g. an image id, or a cluster index
        of a discretised input). ``None`` (default) treats every sample as its own input
        value, the natural reading for continuous images.
    method : {"svd", "ace"}
        How the maximal correlations are computed when ``input_codes`` is given
        (checked in every call).
    rtol : float, optional
        Pseudo-inverse tolerance of :func:`h_score`.

    Returns
    -------
    float
        :math:`\mathfrak T \in [0, 1]` (up to rounding) when the features are a function
        of the input codes, always the case with ``input_codes=None``; higher is better.

    Raises
    ------
    TypeError, ValueError
        As :func:`h_score` and :func:`hgr_maximal_correlation`; ValueError also when
        ``input_codes`` has a single value or carries no information about the labels
        (:math:`\|\tilde B\|_F^2 \le 10^{-12}`, the optimum is 0).

    Notes
    -----
    When the label is a deterministic function of the input (each input value carries a
    single label), :math:`\|\tilde B\|_F^2 = \sum_{x,y} P(x,y)^2/(P(x)P(y)) - 1 =
    |\mathcal Y| - 1` exactly. With ``input_codes=None`` each sample is a distinct input,
    which is this case, so the denominator is :math:`|\mathcal Y| - 1` and the score is
    the H-score divided by its upper bound. Discretising continuous features by
    clustering is the alternative; it changes the denominator with the arbitrary number
    of clusters and can even make it smaller than :math:`\mathcal H_T(f_S)` when
    :math:`f_S` is not constant on clusters, so it is not the default. Since the
    denominator does not depend on the source, ranking sources by :math:`\mathfrak T`
    or by the H-score is the same (Bao et al. Def. 4).

    References
    ----------
    Bao et al. (2019), ICIP, Def. 1-3, eq. 5; Huang et al. (2017), ISIT;
    Breiman & Friedman (1985), JASA 80(391).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1, 2], 20)
    >>> x = rng.standard_normal((60, 4)) + 2 * np.eye(3, 4)[y]
    >>> round(h_score_transferability(x, y), 4)  # H-score / (|Y| - 1)
    0.6228
    """
    check_choice(method, "method", _METHODS)
    score = h_score(features, target_labels, rtol=rtol)
    codes, classes = as_labels(target_labels, "target_labels")
    if input_codes is None:
        return score / (len(classes) - 1)
    x, x_classes = as_labels(input_codes, "input_codes")
    check_same_length(input_codes=x, target_labels=codes)
    k = min(len(x_classes), len(classes)) - 1
    if k < 1:
        raise ValueError("input_codes has a single value; the optimal H-score is 0")
    optimum = float(np.sum(hgr_maximal_correlation(x, codes, k, method=method) ** 2))
    if optimum <= 1e-12:
        raise ValueError("input_codes carry no information about target_labels (||B||_F = 0)")
    return score / optimum
