"""PARC: pairwise annotation representation comparison.

Bolya, Mittapalli & Hoffman, "Scalable Diverse Model Selection for Accessible Transfer
Learning", NeurIPS 2021.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from transferlib.scores._backend import Namespace
from transferlib.scores._inputs import centre, feature_inputs, normalised
from transferlib.validation import check_int

__all__ = ["parc"]

#: Correlations are ranked after rounding to this many decimals, so that ties exact in
#: arithmetic (duplicate samples, two-dimensional features) stay ties whatever the
#: summation order of the backend's matrix product.
_DECIMALS = 10
_EPS = float(np.finfo(np.float64).eps)


def _standardised(xp: Namespace, f: Any) -> tuple[Any, float]:
    """Columns centred and scaled to unit (population) variance, and the rounding level of
    the result. Constant columns, whose centred values are rounding residue, become zero
    (as in scikit-learn's scaler); centring a column leaves residue of about eps times its
    largest magnitude, i.e. eps * max|f_j| / std_j once standardised."""
    z = centre(xp, f)
    std = xp.sqrt(xp.sum(z * z, axis=0) / z.shape[0])
    largest = xp.column_max_abs(f)
    constant = std <= 4.0 * _EPS * largest
    std = xp.where(constant, math.inf, std)
    return z / std, 4.0 * _EPS * xp.item(xp.max(largest / std))


def _whitened_components(xp: Namespace, f: Any, n_components: int) -> tuple[Any, float]:
    """Scores on the leading ``n_components`` principal components, each scaled to unit
    variance (what standardising PCA scores gives), and their rounding level (that of the
    centred features over the smallest kept standard deviation); components whose variance is at
    rounding level relative to the largest are dropped. Each component is signed so that
    its largest-magnitude loading is positive, as scikit-learn does: row correlations
    depend on the signs."""
    z = centre(xp, f)
    n, d = z.shape
    eigenvalues, vectors = xp.eigh(xp.gram(z))
    keep = eigenvalues > max(n, d) * _EPS * xp.item(xp.max(eigenvalues))
    eigenvalues, vectors = eigenvalues[keep], vectors[:, keep]
    count = min(n_components, eigenvalues.shape[0])
    eigenvalues, vectors = eigenvalues[-count:], vectors[:, -count:]
    # loadings (d, count): eigenvectors of Z^T Z, directly or as Z^T u / sqrt(eigenvalue)
    loadings = vectors if d < n else (z.T @ vectors) / xp.sqrt(eigenvalues)
    pivot = xp.to_numpy(loadings)
    signs = np.sign(pivot[np.abs(pivot).argmax(axis=0), np.arange(count)])
    std = xp.sqrt(eigenvalues / n)
    noise = 4.0 * _EPS * math.sqrt(d) * xp.max_abs(f) / xp.item(xp.min(std))
    return (z @ (loadings * xp.asarray(signs))) / (std * math.sqrt(n)), noise


def _row_correlations(xp: Namespace, z: Any, noise: float) -> Any:
    """(n, n) Pearson correlations between the rows of ``z`` (each sample's values across
    the features); a row that is constant across features, up to the rounding of its own
    centring and the rounding level ``noise`` of ``z``'s entries, correlates 0 with every
    other."""
    d = z.shape[1]
    norms = xp.sqrt(xp.row_sq_norms(z))
    r = z - xp.sum(z, axis=1, keepdims=True) / d
    r_norms = xp.sqrt(xp.row_sq_norms(r))
    constant = r_norms <= 8.0 * d * _EPS * norms + 8.0 * math.sqrt(d) * noise
    r = r / xp.where(constant, math.inf, r_norms)[:, None]
    return r @ r.T


def _spearman_with_binary(xp: Namespace, values: Any, indicator: Any) -> float:
    r"""Spearman correlation between ``values`` and a 0/1 ``indicator`` (both (m,)).

    The indicator's average ranks are an affine function of it, so the Spearman
    correlation is the Pearson correlation of the mid-ranks :math:`r` of ``values`` with
    the indicator: :math:`\sum_i \tilde r_i s_i / \sqrt{\sum_i \tilde r_i^2 \cdot m p(1-p)}`
    with :math:`\tilde r = r - (m+1)/2` and :math:`p` the indicator's mean. 0 when every
    value is tied.
    """
    m = values.shape[0]
    order = xp.argsort(values)
    ordered = values[order]
    left = xp.searchsorted(ordered, ordered, "left")
    right = xp.searchsorted(ordered, ordered, "right")
    ranks = xp.asarray(left + right, "float") * 0.5 - 0.5 * m  # mid-rank minus (m + 1) / 2
    spread = xp.item(xp.sum(ranks * ranks))
    if spread == 0.0:
        return 0.0
    p = xp.item(xp.sum(indicator)) / m
    covariance = xp.item(xp.sum(ranks * indicator[order]))
    return covariance / math.sqrt(spread * m * p * (1.0 - p))


def parc(features: Any, target_labels: Any, n_components: int | None = None) -> float:
    r"""PARC: Spearman correlation of the pairwise dissimilarities of features and labels.

    With :math:`\tilde f_i` the features standardised per column (zero mean, unit
    variance) and :math:`e_{y_i}` the one-hot labels,

    .. math:: D^F_{ij} = 1 - \operatorname{corr}(\tilde f_i, \tilde f_j), \qquad
              D^Y_{ij} = 1 - \operatorname{corr}(e_{y_i}, e_{y_j}), \qquad
              \mathrm{PARC} = \rho_S\big(\{D^F_{ij}\}_{i<j}, \{D^Y_{ij}\}_{i<j}\big)

    where :math:`\operatorname{corr}` is the Pearson correlation of two samples' values
    across coordinates and :math:`\rho_S` Spearman's rank correlation over the
    :math:`n(n-1)/2` pairs. :math:`D^Y_{ij}` is 0 for two samples of one class and
    :math:`K/(K-1)` otherwise (:math:`K` classes), so PARC measures how much more alike
    the features of same-class pairs are than those of different-class pairs. Higher is
    better.

    Parameters
    ----------
    features : array-like or tensor of shape (n, d)
        Source features on the target inputs; at least two columns (a correlation across
        one coordinate is undefined).
    target_labels : array-like of shape (n,)
        Target labels; at least two classes and at least one class with two samples.
    n_components : int, optional
        If given (>= 2), the features are first projected on their leading
        ``n_components`` principal components (at most the rank of the centred features
        exist; a larger value keeps them all), which the per-column standardisation then
        whitens. Bolya et al. reduce to 32 components in their experiments
        (``n_components=32``); the default uses the features as given.

    Returns
    -------
    float
        PARC in [-1, 1]. Invariant to the order of the samples and of the columns, to
        label names and to a shift and a positive scale of all features; without
        ``n_components`` also to a separate positive scale and shift of each column (the
        standardisation removes them; PCA, which comes first, does not). 0 when every pair
        of samples is equally dissimilar (e.g. identical features).

    Raises
    ------
    TypeError
        Non-numeric features, labels of mixed kinds, ``n_components`` not an integer.
    ValueError
        Wrong shapes or lengths, NaN/inf, fewer than two feature columns, fewer than two
        classes, every class a single sample (then every label dissimilarity is equal and
        the rank correlation is undefined), ``n_components`` below 2.

    Notes
    -----
    Conventions. The value is a correlation in [-1, 1]; the authors' code reports it
    multiplied by 100. Their optional reduction is scikit-learn's randomised PCA (one
    power iteration, a fixed seed), an approximation; here the principal components are
    exact, signed so that the largest-magnitude loading of each is positive. A sample
    whose standardised features are all equal has no defined correlation with the
    others; it is given correlation 0 with every other sample (its dissimilarity is 1).
    Correlations are rounded to 10 decimals before ranking, so that ties exact in
    arithmetic (duplicate samples, two-column features) are ties on either backend,
    whatever the summation order of the matrix product. The authors' code computes
    :math:`D^Y` with ``numpy.corrcoef``, whose rounding splits same-class pairs into
    dissimilarities 0 and about 2e-16; ranking then orders those pairs by rounding noise,
    which moves the value (0.583 there against the exact 0.590 on 60 samples in three
    classes); here :math:`D^Y` is exactly two-valued.

    Computation. Because :math:`D^Y` takes two values, Spearman's correlation is the
    point-biserial correlation of the mid-ranks of :math:`D^F` with the different-class
    indicator, so no label matrix is ranked. Time :math:`O(n^2 d + n^2 \log n)` and
    memory :math:`O(n^2)`: subsample large targets (the SFDA authors cap PARC at 15,000
    samples).

    References
    ----------
    Bolya, Mittapalli, Hoffman (2021), NeurIPS, Sec. 4 (PARC, from representation
    similarity analysis).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1, 2], 20)
    >>> x = rng.standard_normal((60, 4)) + 2 * np.eye(3, 4)[y]
    >>> round(parc(x, y), 4), round(parc(x, y, n_components=2), 4)
    (0.5285, 0.2866)
    """
    n_components = check_int(n_components, "n_components", minimum=2, allow_none=True)
    xp, f, codes, _ = feature_inputs(features, target_labels)
    d = f.shape[1]
    if d < 2:
        raise ValueError(
            f"features has {d} column; parc correlates each sample's features across "
            "columns, so it needs at least 2"
        )
    if int(np.bincount(xp.to_numpy(codes)).max()) < 2:
        raise ValueError(
            "target_labels: every class has a single sample, so every pair of samples is a "
            "different-class pair and parc's rank correlation is undefined"
        )
    f = normalised(xp, f)[0]  # an exact power of two: every step below is scale invariant
    if n_components is None:
        z, noise = _standardised(xp, f)
    else:
        z, noise = _whitened_components(xp, f, n_components)
    similarity = xp.upper_triangle(xp.round(_row_correlations(xp, z, noise), _DECIMALS))
    different = xp.upper_triangle(xp.asarray(codes[:, None] != codes[None, :]))
    # D^F = 1 - corr ranks as -corr; D^Y is proportional to the different-class indicator
    return _spearman_with_binary(xp, -similarity, different)
