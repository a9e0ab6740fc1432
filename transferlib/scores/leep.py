"""LEEP and the expected empirical predictor (EEP).

Nguyen, Hassner, Archambeau & Seeger, "LEEP: A New Measure to Evaluate
Transferability of Learned Representations", ICML 2020, Sec. 2-3.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np

from transferlib.scores._backend import Namespace, namespace
from transferlib.validation import (
    Probabilities,
    as_labels,
    as_probabilities,
    check_n_classes,
    check_same_length,
)

__all__ = ["eep_predictions", "leep"]


def _prepare(
    source_probs: Any, target_labels: Any, atol: float | None
) -> tuple[Namespace, Probabilities, np.ndarray, int]:
    """Validated probabilities (with row sums and column mass), target codes and |Y|."""
    xp = namespace(source_probs)
    probs = as_probabilities(source_probs, "source_probs", atol=atol, keep_float32=True)
    codes, classes = as_labels(target_labels, "target_labels")
    check_same_length(source_probs=probs.values, target_labels=codes)
    check_n_classes(len(classes), 2, "target_labels")
    return xp, probs, codes, len(classes)


def _class_blocks(
    xp: Namespace, probs: Probabilities, codes: np.ndarray, k: int
) -> Iterator[tuple[Any, Any, Any]]:
    r"""Per target class :math:`y`: the indices of its rows, the rows, and
    :math:`\hat P(y \mid \cdot)`, a row of the EEP conditional (eq. 1).

    Rows are divided by their sums inside the products (no normalised copy). The class's
    rows are gathered into one cache-sized block and everything about them is computed
    from it, so the matrix is read once more in all. A source class with zero total mass
    has :math:`\theta_z = 0` on every input, so its column is never used; 0 instead of
    0/0 keeps the result free of NaN.
    """
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(k + 1))
    order_xp = xp.asarray(order, "int")
    inverse_sums = 1.0 / probs.row_sums
    inverse_marginal = 1.0 / xp.where(probs.column_mass > 0, probs.column_mass, 1.0)
    for lo, hi in itertools.pairwise(bounds):
        index = order_xp[lo:hi]
        rows = xp.asarray(xp.take_rows(probs.values, index))  # float32 widened in cache
        yield index, rows, (inverse_sums[index] @ rows) * inverse_marginal


def eep_predictions(
    source_probs: Any, target_labels: Any, *, atol: float | None = None
) -> np.ndarray | Any:
    r"""Class probabilities of the expected empirical predictor (EEP).

    .. math:: p(y \mid x_i) = \sum_{z} \hat P(y \mid z)\, \theta(x_i)_z, \qquad
              \hat P(y \mid z) = \frac{\hat P(y, z)}{\hat P(z)}, \quad
              \hat P(y, z) = \frac1n \sum_{i : y_i = y} \theta(x_i)_z

    (Nguyen et al. eq. 1 and Step 3). Source classes with zero total mass
    (:math:`\hat P(z) = 0`) get :math:`\hat P(\cdot \mid z) = 0`; since then
    :math:`\theta(x_i)_z = 0` for every input, they contribute nothing and the rows
    still sum to 1.

    Parameters
    ----------
    source_probs : array-like or tensor of shape (n, |Z|)
        Source-model output distributions :math:`\theta(x_i)` on the target inputs, any
        float dtype (float16 and bfloat16 included); see :func:`leep` for the tolerance.
    target_labels : array-like of shape (n,)
        Target labels (numbers or strings); at least two classes. Column ``j`` of the
        result is the ``j``-th class in sorted order (``numpy.unique``).
    atol : float, optional
        Tolerance on the row sums of ``source_probs``, in [0, 1); see :func:`leep`.

    Returns
    -------
    ndarray or tensor of shape (n, |Y|)
        Rows are distributions over the target classes; a tensor (same device) for
        torch input, float64.

    Raises
    ------
    TypeError, ValueError
        As :func:`leep`.

    Notes
    -----
    Complexity :math:`O(n |Z| |Y|)` (one GEMM) plus :math:`O(n|Z|)` for the joint.
    """
    xp, probs, codes, k = _prepare(source_probs, target_labels, atol)
    conditional = xp.stack([row for _, _, row in _class_blocks(xp, probs, codes, k)])
    return (xp.asarray(probs.values) @ conditional.T) / probs.row_sums[:, None]


def leep(source_probs: Any, target_labels: Any, *, atol: float | None = None) -> float:
    r"""Log expected empirical prediction (LEEP) of a source model on a target set.

    .. math:: T(\theta, \mathcal D) = \frac1n \sum_{i=1}^n
              \log \Big( \sum_{z \in \mathcal Z} \hat P(y_i \mid z)\, \theta(x_i)_z \Big)
              \qquad \text{(Nguyen et al. eq. 2)}

    the average log-likelihood of the EEP (see :func:`eep_predictions`). It is at most
    the log-likelihood of the best re-trained head when that class contains the EEP
    (Property 1). Nguyen et al. also state the lower bound
    :math:`\mathrm{NCE}(Y \mid Z) + \frac1n\sum_i \log\theta(x_i)_{z_i}`,
    :math:`z_i = \arg\max_z \theta(x_i)_z` (Property 2); it holds for peaked sources
    but not for every input: property-based tests found five samples,
    :math:`\theta = ((\frac12, \frac12), (0, 1), (\frac13, \frac23), (\frac12, \frac12),
    (\frac12, \frac12))`, :math:`y = (0, 1, 1, 0, 0)`, with LEEP :math:`-0.568` below the
    bound :math:`-0.497` (checked by hand). Higher is better.

    Parameters
    ----------
    source_probs : array-like or tensor of shape (n, |Z|)
        Source-model probabilities: finite, non-negative, rows summing to 1 within
        ``atol``; logits are rejected. Any float dtype is accepted and computed in
        float64 (a NumPy float32 matrix is read as such and widened block by block, with
        no float64 copy); torch input is computed with torch on its device.
    target_labels : array-like of shape (n,)
        Target labels; at least two classes.
    atol : float, optional
        Tolerance on the row sums, in [0, 1). Default: ``max(1e-5, 2 * eps)`` of the
        input's dtype (:func:`transferlib.validation.probability_atol`), so float16
        (≈ 2e-3) and bfloat16 (≈ 1.6e-2) softmax outputs pass while float32/float64 keep
        1e-5.

    Returns
    -------
    float
        LEEP in nats, :math:`\le 0`.

    Raises
    ------
    TypeError
        Non-numeric probabilities, or labels of mixed kinds.
    ValueError
        Wrong shapes or lengths, NaN/inf, negative entries, row sums off by more than
        ``atol``, fewer than two target classes, ``atol`` outside [0, 1).

    Notes
    -----
    Each row is divided by its sum before use (the rows then are exact distributions,
    whatever rounding the half-precision input carried), so LEEP :math:`\le 0` holds; a
    per-sample likelihood rounded above 1 is clipped to 1. A source class receiving no
    probability mass on the target set contributes nothing (no NaN), as argued in
    :func:`eep_predictions`; some public copies divide 0/0 there and return NaN.

    Cost: two reads of ``source_probs``. The first validates it in cache-sized blocks and
    also gives the row sums and the column mass :math:`n\hat P(z)`. The second gathers
    the rows of one target class at a time into a cache-resident block, from which come
    both that class's row of :math:`\hat P(y \mid z)` (class sums weighted by the inverse
    row sums) and the likelihoods of its samples; no (n, |Z|) temporary is formed.

    References
    ----------
    Nguyen et al. (2020), ICML, eq. 1-2, Properties 1-2.

    Examples
    --------
    >>> round(leep([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], [0, 1, 0]), 6)
    -0.408691
    """
    xp, probs, codes, k = _prepare(source_probs, target_labels, atol)
    likelihood = xp.zeros((len(codes),))
    for index, rows, conditional in _class_blocks(xp, probs, codes, k):
        likelihood[index] = rows @ conditional
    likelihood = xp.minimum(likelihood / probs.row_sums, 1.0)
    return 0.0 + xp.item(xp.sum(xp.log(likelihood))) / len(codes)
