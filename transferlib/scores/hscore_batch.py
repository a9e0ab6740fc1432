"""H-scores of one feature matrix for many labelings at once (Bao et al. 2019, eq. 4).

Per-pixel transferability (the H-score of image features for the label of every pixel of a
dense target), many candidate target tasks on one source, or one task's labels under many
permutations all share the feature matrix. The expensive part of the H-score, factorising the
feature covariance, depends on the features only, so :func:`h_scores` does it once and then
needs one sparse pass over the labels for all labelings together, instead of one covariance,
factorisation and solve per labeling.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from transferlib.scores._backend import Namespace, namespace
from transferlib.scores.hscore import _centred, _rank_tolerance
from transferlib.validation import as_float_array, check_bool, check_same_length, to_numpy

__all__ = ["h_scores"]

# Non-zeros of one sparse class-indicator block: bounds the memory of the label pass.
_BLOCK_NONZEROS = 1 << 22


def _label_matrix(labels: Any, name: str = "target_labels") -> tuple[np.ndarray, np.ndarray]:
    """Per-column codes ``0..K_j-1`` of an (n, m) label matrix, and ``K_j`` for every column.

    Codes follow the sorted order of each column's values (any sortable dtype). One sort of
    the whole matrix, no loop over columns.
    """
    raw = to_numpy(labels)
    if raw.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_labelings), got shape {raw.shape}; "
            "pass labels[:, None] for a single labeling"
        )
    if raw.size == 0:
        raise ValueError(f"{name} is empty (shape {raw.shape})")
    if raw.dtype == object:
        raise TypeError(f"{name} must be an array of one dtype (ints, bools, floats, strings)")
    if np.issubdtype(raw.dtype, np.floating) and not np.isfinite(raw).all():
        raise ValueError(f"{name} contains NaN or inf")
    if np.issubdtype(raw.dtype, np.complexfloating):
        raise TypeError(f"{name} must be real, got dtype {raw.dtype}")
    order = np.argsort(raw, axis=0, kind="stable")
    ordered = np.take_along_axis(raw, order, axis=0)
    starts = np.vstack([np.zeros((1, raw.shape[1]), dtype=bool), ordered[1:] != ordered[:-1]])
    ranks = np.cumsum(starts, axis=0)
    codes = np.empty(raw.shape, dtype=np.int64)
    np.put_along_axis(codes, order, ranks, axis=0)
    return codes, ranks[-1] + 1


def _whitened(xp: Namespace, centred: Any, rtol: float) -> Any:
    r"""``Z`` (n, r) with :math:`ZZ^\top = F_c\,\Sigma^{+}F_c^\top`, :math:`\Sigma = F_c^\top F_c/n`.

    The pseudo-inverse semantics are those of :func:`~transferlib.scores.h_score`: covariance
    eigenvalues below ``rtol`` times the largest are dropped. ``d <= n``: Cholesky factor of
    :math:`\Sigma` when a second factorisation, shifted down by the tolerance, proves that no
    eigenvalue is dropped, else an eigendecomposition; ``n < d``: eigendecomposition of the
    :math:`n \times n` Gram matrix, whose kept eigenvectors span the same rows.
    """
    n, d = centred.shape
    if d <= n:
        covariance = (centred.T @ centred) / n
        shifted = xp.add_diagonal(xp.copy(covariance), -rtol * xp.frobenius(covariance))
        if xp.cholesky(shifted) is not None:
            return xp.solve_lower(xp.cholesky(covariance), centred.T).T
        eigenvalues, eigenvectors = xp.eigh(covariance)
        keep = eigenvalues > rtol * xp.item(xp.max(eigenvalues))
        return (centred @ eigenvectors[:, keep]) / xp.sqrt(eigenvalues[keep])
    eigenvalues, eigenvectors = xp.eigh(centred @ centred.T)
    keep = eigenvalues > rtol * xp.item(xp.max(eigenvalues))
    return eigenvectors[:, keep] * float(np.sqrt(n))


def _group_sums(xp: Namespace, z: Any, groups: np.ndarray, n_groups: int) -> Any:
    """Row sums of ``z`` (n, r) per group, for an (n, b) matrix of group indices: (n_groups, r).

    One sparse indicator product (scipy for NumPy, ``torch.sparse.mm`` on the tensor's device).
    """
    n, width = groups.shape
    rows = np.repeat(np.arange(n), width)
    if xp.torch is None:
        from scipy.sparse import csr_matrix

        indicator = csr_matrix((np.ones(n * width), (groups.ravel(), rows)), shape=(n_groups, n))
        return np.asarray(indicator @ z)
    torch = xp.torch
    index = torch.as_tensor(np.stack([groups.ravel(), rows]), device=xp.device)
    ones = torch.ones(n * width, dtype=z.dtype, device=xp.device)
    indicator = torch.sparse_coo_tensor(index, ones, (n_groups, n), check_invariants=False)
    return torch.sparse.mm(indicator, z)


def h_scores(
    features: Any,
    target_labels: Any,
    *,
    normalised: bool = False,
    rtol: float | None = None,
) -> np.ndarray:
    r"""H-scores of one feature matrix for each column of a label matrix.

    .. math:: \mathcal H_j(f) = \mathrm{tr}\big(\mathrm{cov}(f(X))^{+}\,
              \mathrm{cov}(\mathbb E[f(X) \mid Y_j])\big), \qquad j = 1, \dots, m

    the H-score of :func:`~transferlib.scores.h_score` (both covariances normalised by
    :math:`1/n`, :math:`^{+}` the Moore-Penrose pseudo-inverse) for every labeling
    :math:`Y_j` of the same :math:`n` samples.

    Parameters
    ----------
    features : array-like or tensor of shape (n, d)
        Source features on the target inputs. Torch input is computed with torch on its own
        device.
    target_labels : array-like or tensor of shape (n, m)
        Column ``j`` labels the samples for task ``j`` (any sortable values: class codes,
        palette indices, strings). A column with a single class scores 0.
    normalised : bool
        Return :math:`\mathcal H_j / (|\mathcal Y_j| - 1)`, the normalised transferability
        :math:`\mathfrak T` of Bao et al. (Def. 3) when every sample is a distinct input (see
        :func:`~transferlib.scores.h_score_transferability`); NaN for single-class columns.
    rtol : float, optional
        Pseudo-inverse tolerance, as in :func:`~transferlib.scores.h_score` (default
        ``max(n, d) * eps``).

    Returns
    -------
    numpy.ndarray of shape (m,)
        ``float64`` H-scores in :math:`[0, |\mathcal Y_j| - 1]`, equal to ``h_score(features,
        target_labels[:, j])`` for every column with at least two classes.

    Notes
    -----
    With whitened features :math:`Z = F_c W`, :math:`WW^\top = \mathrm{cov}(f)^{+}`,
    :math:`\mathcal H_j = \sum_{c} \|\sum_{i: y_{ij} = c} z_i\|^2 / (n\, n_{jc})`. The
    covariance is factorised once for all columns (Cholesky, or an eigendecomposition when it
    is singular or :math:`n < d`), then the class sums of every column come from sparse
    class-indicator products over blocks of columns. Cost
    :math:`O(nd\min(n, d) + \min(n,d)^3 + nmr)` for rank :math:`r`, against
    :math:`O(m(nd\min(n,d) + \min(n,d)^3))` for :math:`m` separate H-scores.

    References
    ----------
    Bao et al. (2019), ICIP, Def. 2-3, eq. 4 and §4.2 (per-pixel H-scores of dense targets).

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0, 1, 2, 0, 1, 2])
    >>> labels = np.stack([y, y % 2, np.zeros(6, dtype=int)], axis=1)
    >>> h_scores(np.eye(3)[y], labels).round(6)  # one-hot of the first column
    array([2., 1., 0.])
    """
    check_bool(normalised, "normalised")
    xp = namespace(features)
    f = as_float_array(features, "features")
    codes, n_classes = _label_matrix(target_labels)
    check_same_length(features=f, target_labels=codes)
    n, d = f.shape
    z = _whitened(xp, _centred(xp, f), _rank_tolerance(rtol, n, d))

    m, k = codes.shape[1], int(n_classes.max())
    scores = np.zeros(m)
    block = max(1, _BLOCK_NONZEROS // n)
    for start in range(0, m, block):
        columns = slice(start, min(start + block, m))
        width = columns.stop - columns.start
        groups = codes[:, columns] + k * np.arange(width)
        counts = np.bincount(groups.ravel(), minlength=width * k)
        sums = _group_sums(xp, z, groups, width * k)
        squared = xp.to_numpy(xp.sum(sums * sums, axis=1))
        ratio = np.divide(squared, n * counts, out=np.zeros_like(squared), where=counts > 0)
        scores[columns] = ratio.reshape(width, k).sum(axis=1)
    scores[n_classes < 2] = 0.0  # the class sum of centred features is 0 up to rounding
    if normalised:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n_classes > 1, scores / (n_classes - 1), np.nan)
    return scores
