"""LEEP and the expected empirical predictor (EEP).

Nguyen, Hassner, Archambeau & Seeger, "LEEP: A New Measure to Evaluate
Transferability of Learned Representations", ICML 2020, Sec. 2-3.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from transferlib.scores._backend import namespace
from transferlib.validation import (
    as_labels,
    check_n_classes,
    check_probability_rows,
    check_same_length,
    is_tensor,
    probability_matrix,
    probability_summaries,
)

__all__ = ["eep_predictions", "leep"]

#: NumPy input with at least this many entries (32 MB of float64) takes the compiled loops,
#: which save about 4 ms a call there; smaller input takes the array route, so that a
#: process that never scores a large matrix does not spend half a second (mostly importing
#: numba) loading them.
_COMPILED_MIN_ENTRIES = 1 << 22


def _compiled_route(
    values: np.ndarray, codes: np.ndarray, k: int, name: str, atol: float, likelihoods: bool
) -> tuple[Any, Any, Any]:
    """Row sums, EEP conditional and (when asked) unnormalised likelihoods of C-contiguous
    NumPy probabilities: two passes of the compiled loops, the rows checked after the first."""
    from transferlib.scores import _compiled

    bits = values.view(np.uint64 if values.dtype == np.float64 else np.uint32)
    sums, seen, joint = _compiled.row_and_group_sums(values, bits, codes, k)
    # A set sign bit may be -0.0, which is allowed: only then is the true minimum needed.
    lowest = float(values.min()) if int(seen) >> (8 * values.itemsize - 1) else 0.0
    check_probability_rows(values, sums, lowest, name, atol)
    marginal = joint.sum(0)
    joint /= marginal + (marginal == 0)  # in place: a fresh (|Y|, |Z|) array costs page faults
    return sums, joint, _compiled.grouped_row_dots(values, codes, joint) if likelihoods else None


def _array_route(
    values: Any, codes: np.ndarray, k: int, name: str, atol: float, likelihoods: bool
) -> tuple[Any, Any, Any]:
    r"""As :func:`_compiled_route` for float64 NumPy arrays or tensors (torch on their device).

    A blocked read validates the rows and gives their sums and the marginal
    :math:`n \hat P(z)` of the rows divided by their sums (no normalised copy).
    Then the rows of one target class at a time are gathered into a cache-sized block,
    from which come that class's row of :math:`\hat P(y \mid z)` and the likelihoods of
    its samples. Summing gathered rows keeps the order of the additions fixed, where
    ``index_add_`` on a GPU adds in an order that changes from run to run.
    """
    xp = namespace(values)
    sums, lowest, marginal = probability_summaries(values, column_mass=True)
    check_probability_rows(values, sums, lowest, name, atol)
    inverse = 1.0 / sums
    inverse_marginal = 1.0 / (marginal + (marginal == 0))
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(k + 1))
    order = xp.asarray(order, "int")
    likelihood = xp.empty((len(codes),)) if likelihoods else None
    conditional = []  # its rows, kept only when the caller needs no likelihoods
    for lo, hi in itertools.pairwise(bounds):
        index = order[lo:hi]
        rows = xp.take_rows(values, index)
        row = (inverse[index] @ rows) * inverse_marginal
        if likelihoods:
            likelihood[index] = rows @ row
        else:
            conditional.append(row)
    return sums, xp.stack(conditional) if conditional else None, likelihood


def _eep(
    source_probs: Any, target_labels: Any, atol: float | None, likelihoods: bool
) -> tuple[Any, Any, Any, Any]:
    r"""Validated probabilities, their row sums, the EEP conditional :math:`\hat P(y \mid z)`
    (eq. 1, shape (|Y|, |Z|); None from the array route when ``likelihoods``) and, when
    ``likelihoods``, every sample's :math:`\sum_z \hat P(y_i \mid z)\, \theta(x_i)_z`
    times its row sum (else None).

    Rows are divided by their sums inside the products (no normalised copy). A source
    class with zero total mass has :math:`\theta_z = 0` on every input, so its column is
    never used; 0 instead of 0/0 keeps the result free of NaN. The probabilities come back
    as their route read them: C-contiguous with float32 kept (compiled), or float64 on
    their backend.
    """
    values, tol = probability_matrix(source_probs, "source_probs", atol=atol, keep_float32=True)
    codes, classes = as_labels(target_labels, "target_labels")
    check_same_length(source_probs=values, target_labels=codes)
    check_n_classes(len(classes), 2, "target_labels")
    route = _array_route
    if not is_tensor(values) and values.size >= _COMPILED_MIN_ENTRIES:
        values, route = np.ascontiguousarray(values), _compiled_route
    else:
        values = namespace(values).asarray(values)  # small float32 input: widened copy
    return values, *route(values, codes, len(classes), "source_probs", tol, likelihoods)


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
    values, sums, conditional, _ = _eep(source_probs, target_labels, atol, likelihoods=False)
    return (namespace(values).asarray(values) @ conditional.T) / sums[:, None]


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
        float64 (a NumPy float32 matrix of :math:`2^{22}` entries or more is widened as
        it is read, with no float64 copy); torch input is computed with torch on its
        device.
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

    Cost: NumPy input of at least :math:`2^{22}` entries is read twice, in storage order,
    by compiled loops (numba, :mod:`transferlib.scores._compiled`; a non-contiguous array
    is copied first). The first read validates it and gives the row sums and the joint
    :math:`n\hat P(y, z)` (each row divided by its sum as it is added to its class's row);
    the second gives every sample's likelihood; no (n, |Z|) temporary is formed
    (``benchmarks/bench_scores.py`` times this against one read). The first such call in a
    process loads the loops (about half a second, mostly importing numba; the first ever
    compiles them into numba's cache, about a second more). Smaller input, and tensors,
    take the array route: a validating read that also gives the marginal, then the rows
    of one target class at a time gathered into a cache-sized block (NumPy, or torch on
    the tensor's device), about one more read in all.

    References
    ----------
    Nguyen et al. (2020), ICML, eq. 1-2, Properties 1-2.

    Examples
    --------
    >>> round(leep([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], [0, 1, 0]), 6)
    -0.408691
    """
    values, sums, _, likelihood = _eep(source_probs, target_labels, atol, likelihoods=True)
    xp = namespace(values)
    likelihood = xp.minimum(likelihood / sums, 1.0)
    return 0.0 + xp.item(xp.sum(xp.log(likelihood))) / len(sums)
