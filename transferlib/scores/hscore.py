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

from transferlib.scores._backend import Namespace, namespace
from transferlib.scores._validation import (
    as_features,
    as_labels,
    check_same_length,
    require_classes,
)

__all__ = [
    "h_score",
    "h_score_transferability",
    "hgr_maximal_correlation",
    "shrinkage_h_score",
]


def _default_rtol(n: int, d: int) -> float:
    return max(n, d) * float(np.finfo(np.float64).eps)


def _trace_pinv_quadratic(xp: Namespace, a: Any, r: Any, rtol: float) -> float:
    r"""Return :math:`\mathrm{tr}(R^\top A^{+} R)` for a symmetric PSD matrix ``a``.

    Pseudo-inverse semantics: eigenvalues of ``a`` below ``rtol * max eigenvalue`` are
    dropped. Fast path: if the Cholesky factorisation of :math:`A - \tau I`,
    :math:`\tau = \mathrm{rtol}\,\|A\|_F \ge \mathrm{rtol}\,\lambda_{\max}`, succeeds,
    every eigenvalue exceeds the tolerance (up to rounding), nothing would be dropped,
    and the answer is :math:`\|L^{-1}R\|_F^2` with :math:`L` the Cholesky factor of
    :math:`A` (two Cholesky factorisations cost a third of one eigendecomposition).
    Otherwise the eigendecomposition is used.
    """
    threshold = rtol * xp.item(xp.sqrt(xp.sum(a * a)))
    if xp.cholesky(a - threshold * xp.eye(a.shape[0])) is not None:  # then A is PD too
        solved = xp.solve_lower(xp.cholesky(a), r)
        return xp.item(xp.sum(solved * solved))
    eigenvalues, eigenvectors = xp.eigh(a)
    keep = eigenvalues > rtol * xp.item(xp.max(eigenvalues))
    projected = (eigenvectors.T @ r)[keep]
    return xp.item(xp.sum(xp.sum(projected * projected, axis=1) / eigenvalues[keep]))


def _class_weights(xp: Namespace, codes: Any, k: int) -> Any:
    r"""(k, n) matrix :math:`W_{yi} = 1[y_i = y] / \sqrt{n\, n_y}` (used for the Gram side).

    With centred features :math:`F_c`, :math:`M = W F_c` has rows
    :math:`\sqrt{p_y}(\mu_y - \mu)`, so :math:`M^\top M = \mathrm{cov}(E[f \mid Y])`.
    """
    onehot = xp.one_hot(codes, k)
    counts = xp.sum(onehot, axis=0)
    return (onehot / xp.sqrt(counts * codes.shape[0])).T


def _between_rows(xp: Namespace, centred: Any, codes: Any, k: int) -> Any:
    r""":math:`M = W F_c` (rows :math:`\sqrt{p_y}(\mu_y - \mu)`) from O(nd) class sums."""
    counts = xp.asarray(np.bincount(xp.to_numpy(codes), minlength=k))
    return xp.class_sums(centred, codes, k) / xp.sqrt(counts * centred.shape[0])[:, None]


def _regularised_quadratic(
    xp: Namespace, centred: Any, codes: Any, k: int, ridge: float, scale: float, rtol: float
) -> float:
    r"""Return :math:`\mathrm{tr}\big(W F_c (aI + b F_c^\top F_c)^{+} F_c^\top W^\top\big)`.

    ``ridge`` is :math:`a`, ``scale`` is :math:`b`. For :math:`d \le n` the
    :math:`d \times d` matrix is factorised; for :math:`n < d` the identity
    :math:`F_c (aI + bF_c^\top F_c)^{+} F_c^\top = G (aI + bG)^{+}`, :math:`G = F_cF_c^\top`,
    moves the work to the :math:`n \times n` Gram side (same non-zero spectrum, so the
    same tolerance semantics).
    """
    n, d = centred.shape
    if d <= n:
        a = scale * (centred.T @ centred)
        if ridge:
            a = a + ridge * xp.eye(d)
        return _trace_pinv_quadratic(xp, a, _between_rows(xp, centred, codes, k).T, rtol)
    weights = _class_weights(xp, codes, k)
    eigenvalues, eigenvectors = xp.eigh(centred @ centred.T)
    denominators = ridge + scale * eigenvalues
    keep = denominators > rtol * xp.item(xp.max(denominators))
    projected = (eigenvectors.T @ weights.T)[keep]
    gains = eigenvalues[keep] / denominators[keep]
    return xp.item(xp.sum(gains * xp.sum(projected * projected, axis=1)))


def _prepare(features: Any, target_labels: Any) -> tuple[Namespace, Any, Any, int]:
    xp = namespace(features)
    f = as_features(features, xp)
    codes, classes = as_labels(target_labels, "target_labels")
    check_same_length(features=f, target_labels=codes)
    require_classes(len(classes), 2)
    centred = f - xp.sum(f, axis=0, keepdims=True) / f.shape[0]
    return xp, centred, xp.asarray(codes, "int"), len(classes)


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
        with torch on its own device.
    target_labels : array-like of shape (n,)
        Target labels; at least two classes.
    rtol : float, optional
        Pseudo-inverse tolerance: covariance eigenvalues below
        ``rtol * largest eigenvalue`` are dropped. Default ``max(n, d) * eps``
        (:math:`\approx 10^{-12}` for n = 5000), the usual numerical-rank tolerance.

    Returns
    -------
    float
        :math:`\mathcal H(f) \in [0, |\mathcal Y| - 1]`; invariant to invertible linear
        maps of the features.

    Notes
    -----
    Computed as :math:`\|L^{-1} M^\top\|_F^2` where :math:`M` stacks
    :math:`\sqrt{p_y}(\mu_y - \mu)` (all class means from one O(nd) pass) and
    :math:`L` is the Cholesky factor of the covariance (one GEMM); a second Cholesky
    factorisation of the covariance shifted down by the tolerance proves that no
    eigenvalue falls below it, otherwise an eigendecomposition is used instead. For
    :math:`n < d` the same quantity is computed on the :math:`n \times n` Gram matrix. Cost
    :math:`O(nd\min(n,d) + \min(n,d)^3)`. Some public copies multiply the two
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
    xp, centred, codes, k = _prepare(features, target_labels)
    n, d = centred.shape
    tol = _default_rtol(n, d) if rtol is None else rtol
    return _regularised_quadratic(xp, centred, codes, k, 0.0, 1.0 / n, tol)


def _ledoit_wolf_shrinkage(xp: Namespace, centred: Any) -> tuple[float, float]:
    r"""Ledoit-Wolf (2004) shrinkage intensity :math:`\alpha` and target scale :math:`\mu`.

    For :math:`S = F_c^\top F_c / n`, :math:`\mu = \mathrm{tr}(S)/d`,
    :math:`\delta^2 = \|S - \mu I\|_F^2`,
    :math:`\bar\beta^2 = \frac{1}{n}\big(\frac1n\sum_i \|x_i\|^4 - \|S\|_F^2\big)`
    and :math:`\alpha = \min(\bar\beta^2, \delta^2)/\delta^2`. :math:`\|S\|_F^2` is taken
    from the smaller Gram side (:math:`\|F_c^\top F_c\|_F = \|F_cF_c^\top\|_F`).
    """
    n, d = centred.shape
    gram = centred.T @ centred if d <= n else centred @ centred.T
    s_frobenius2 = xp.item(xp.sum(gram * gram)) / n**2
    row_norms2 = xp.sum(centred * centred, axis=1)
    mu = xp.item(xp.sum(row_norms2)) / (n * d)
    delta2 = s_frobenius2 - d * mu**2
    beta_bar2 = (xp.item(xp.sum(row_norms2 * row_norms2)) / n - s_frobenius2) / n
    if delta2 <= 0:  # S is already a multiple of the identity
        return 0.0, mu
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
        Pseudo-inverse tolerance as in :func:`h_score` (only matters when
        :math:`\alpha = 0` and :math:`S` is singular).

    Returns
    -------
    float
        Higher is better; bounded by :func:`h_score` computed with the same
        normalisation when :math:`\alpha = 0`.

    Notes
    -----
    Normalisation convention: both :math:`S` and the between-class covariance use
    :math:`1/n` (the maximum-likelihood estimates that Ledoit-Wolf shrinks) and both are
    multiplied by the same :math:`(1-\alpha)`, as Ibrahim et al. do; mixing
    :math:`1/n` and :math:`1/(n-1)` between the two terms, as some copies do, biases
    the score by :math:`n/(n-1)`. :math:`\alpha` agrees with
    ``sklearn.covariance.ledoit_wolf``. Cost as :func:`h_score`; since the shrunk matrix
    is positive definite the Cholesky path is taken.

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
    xp, centred, codes, k = _prepare(features, target_labels)
    n, d = centred.shape
    alpha, mu = _ledoit_wolf_shrinkage(xp, centred)
    tol = _default_rtol(n, d) if rtol is None else rtol
    quadratic = _regularised_quadratic(xp, centred, codes, k, alpha * mu, (1 - alpha) / n, tol)
    return (1 - alpha) * quadratic


def _divergence_transition_matrix(
    x: np.ndarray, kx: int, y: np.ndarray, ky: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""DTM :math:`\tilde B_{y,x} = P_{XY}(x,y)/\sqrt{P_X(x)P_Y(y)} - \sqrt{P_X(x)P_Y(y)}`
    (Bao et al. Def. 1) with the two marginals."""
    joint = np.bincount(y * kx + x, minlength=ky * kx).reshape(ky, kx) / x.shape[0]
    px, py = joint.sum(axis=0), joint.sum(axis=1)
    root = np.sqrt(np.outer(py, px))
    return joint / root - root, px, py


def _ace(
    x: np.ndarray, kx: int, y: np.ndarray, ky: int, k: int, max_iter: int, tol: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Alternating conditional expectations (Breiman & Friedman 1985) for k functions.

    Iterates :math:`f \leftarrow \mathbb E[g(Y) \mid X]`, whitening :math:`f` under
    :math:`P_X`, then :math:`g \leftarrow \mathbb E[f(X) \mid Y]` (block power iteration
    on the conditional-expectation operator with the constant function removed), and
    finally rotates the converged subspace so the pairs are the individual maximal
    correlations.
    """
    joint = np.bincount(y * kx + x, minlength=ky * kx).reshape(ky, kx) / x.shape[0]
    px, py = joint.sum(axis=0), joint.sum(axis=1)
    x_given_y = joint / py[:, None]  # row y: P(x | y)
    y_given_x = (joint / px[None, :]).T  # row x: P(y | x)

    def whiten(values: np.ndarray, p: np.ndarray) -> np.ndarray:
        values = values - p @ values  # zero mean, i.e. orthogonal to the constant function
        gram = values.T @ (p[:, None] * values)
        eigenvalues, eigenvectors = np.linalg.eigh(gram)
        keep = eigenvalues > 1e-14 * max(eigenvalues.max(), 1e-300)
        return values @ (eigenvectors[:, keep] / np.sqrt(eigenvalues[keep]))

    g = whiten(np.random.default_rng(seed).standard_normal((ky, k)), py)
    previous = np.zeros(0)
    for _ in range(max_iter):
        f = whiten(y_given_x @ g, px)
        g = x_given_y @ f
        singular = np.sqrt(np.clip(np.linalg.eigvalsh(g.T @ (py[:, None] * g)), 0, None))[::-1]
        if previous.shape == singular.shape and np.max(np.abs(singular - previous)) < tol:
            break
        previous = singular
        g = whiten(g, py)
    g = whiten(g, py)
    cross = f.T @ joint.T @ g  # E[f(X) g(Y)^T] of the whitened pair, before rotating
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
    so :math:`\sum_i \rho_i^2 = \|\tilde B\|_F^2`.

    Parameters
    ----------
    x_codes, y_codes : array-like of shape (n,)
        Paired samples of the two discrete variables (any hashable labels).
    k : int
        Number of correlations, :math:`1 \le k \le \min(|\mathcal X|, |\mathcal Y|) - 1`.
    method : {"svd", "ace"}
        ``"svd"``: exact SVD of :math:`\tilde B`. ``"ace"``: alternating conditional
        expectations (Breiman & Friedman 1985), the algorithm Bao et al. cite.
    return_functions : bool
        Also return the maximal-correlation functions.
    max_iter, tol, seed : ACE iteration limit, convergence tolerance on the
        correlations, and seed of its random start.

    Returns
    -------
    correlations : ndarray of shape (k,)
        Decreasing, in [0, 1].
    f : ndarray of shape (|X|, k), only with ``return_functions``
        :math:`f_i` evaluated on the sorted distinct x values; zero mean, unit variance.
    g : ndarray of shape (|Y|, k), only with ``return_functions``
        Likewise for :math:`g_i` on the distinct y values.

    Notes
    -----
    Cost :math:`O(n + |\mathcal X||\mathcal Y|\min(|\mathcal X|, |\mathcal Y|))` for SVD,
    :math:`O(|\mathcal X||\mathcal Y|k)` per ACE iteration.

    Examples
    --------
    >>> hgr_maximal_correlation([0, 0, 1, 1], [0, 0, 1, 1])  # Y = X
    array([1.])
    """
    x, x_classes = as_labels(x_codes, "x_codes")
    y, y_classes = as_labels(y_codes, "y_codes")
    check_same_length(x_codes=x, y_codes=y)
    kx, ky = len(x_classes), len(y_classes)
    require_classes(kx, 2, "x_codes")
    require_classes(ky, 2, "y_codes")
    if not 1 <= k <= min(kx, ky) - 1:
        raise ValueError(f"k must be in [1, min(|X|, |Y|) - 1 = {min(kx, ky) - 1}], got {k}")
    if method == "ace":
        correlations, f, g = _ace(x, kx, y, ky, k, max_iter, tol, seed)
    elif method == "svd":
        dtm, px, py = _divergence_transition_matrix(x, kx, y, ky)
        left, singular, right_t = np.linalg.svd(dtm, full_matrices=False)
        correlations = singular[:k]
        f = right_t[:k].T / np.sqrt(px)[:, None]
        g = left[:, :k] / np.sqrt(py)[:, None]
    else:
        raise ValueError(f"method must be 'svd' or 'ace', got {method!r}")
    if return_functions:
        return correlations, f, g
    return correlations


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
        How the maximal correlations are computed when ``input_codes`` is given.
    rtol : float, optional
        Pseudo-inverse tolerance of :func:`h_score`.

    Returns
    -------
    float
        :math:`\mathfrak T \in [0, 1]` when the features are a function of the input
        codes; higher is better.

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
