"""Scores computed from label sequences only: conditional entropy, NCE and hardness.

Tran, Nguyen & Hassner, "Transferability and Hardness of Supervised Classification
Tasks", ICCV 2019 (eq. 6-8 and Sec. 4).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from transferlib.validation import as_labels, check_n_classes, check_same_length

__all__ = ["conditional_entropy", "hardness", "nce"]


def _conditional_entropy(y: np.ndarray, ky: int, z: np.ndarray, kz: int) -> float:
    r""":math:`H(Y \mid Z)` of two code sequences from the counts of their joint codes."""
    joint = z * ky + y
    if kz * ky <= 4 * joint.shape[0]:  # a dense table is cheaper than sorting
        counts = np.bincount(joint, minlength=kz * ky)
        cell_codes = np.flatnonzero(counts)
        cells = counts[cell_codes].astype(np.float64)
    else:  # many distinct labels: count only the cells that occur
        cell_codes, cell_counts = np.unique(joint, return_counts=True)
        cells = cell_counts.astype(np.float64)
    ratio = cells / np.bincount(z, minlength=kz)[cell_codes // ky]
    # 0.0 - x, not -x: an exact zero must come out as 0.0, never -0.0.
    return 0.0 - float((cells * np.log(ratio)).sum()) / y.shape[0]


def _codes(source_labels: Any, target_labels: Any) -> tuple[np.ndarray, int, np.ndarray, int]:
    y, y_classes = as_labels(target_labels, "target_labels")
    z, z_classes = as_labels(source_labels, "source_labels")
    check_same_length(source_labels=z, target_labels=y)
    return y, len(y_classes), z, len(z_classes)


def conditional_entropy(*, target_labels: Any, source_labels: Any) -> float:
    r"""Conditional entropy :math:`H(Y \mid Z)` of two label sequences, in nats.

    With the empirical joint :math:`\hat P(y, z) = \frac1n |\{i : y_i = y, z_i = z\}|`
    (Tran et al. eq. 6) and its marginal :math:`\hat P(z)` (eq. 8),

    .. math:: H(Y \mid Z) = -\sum_{y, z} \hat P(y, z) \log \frac{\hat P(y, z)}{\hat P(z)}
              \qquad \text{(eq. 7)}

    with the convention :math:`0 \log 0 = 0` (empty cells contribute nothing). The
    arguments are keyword-only, so the order of :math:`H(Y \mid Z)` can never be swapped
    by accident.

    Parameters
    ----------
    target_labels : array-like of shape (n,)
        Labels :math:`Y` of the target task; numbers, strings or bools (one kind).
    source_labels : array-like of shape (n,)
        Labels :math:`Z` of the source task for the same inputs, in the same order.

    Returns
    -------
    float
        :math:`H(Y \mid Z) \in [0, \log |\mathcal Y|]`; exactly ``0.0`` (never ``-0.0``)
        when :math:`Y` is a function of :math:`Z`, :math:`H(Y)` when the two are
        independent.

    Raises
    ------
    TypeError
        Labels that mix kinds (``0`` and ``'0'``) or are not numbers, strings or bools.
    ValueError
        Empty, non-1-D or NaN labels, or sequences of different lengths.

    Notes
    -----
    Complexity :math:`O(n + |\mathcal Y||\mathcal Z|)`. Torch tensors are accepted and
    read on the CPU (labels are small).

    References
    ----------
    Tran, Nguyen, Hassner (2019), ICCV, eq. 6-7.

    Examples
    --------
    >>> conditional_entropy(target_labels=[0, 0, 1, 1], source_labels=["a", "b", "a", "b"])
    0.6931471805599453
    """
    return _conditional_entropy(*_codes(source_labels, target_labels))


def nce(source_labels: Any, target_labels: Any) -> float:
    r"""Negative conditional entropy :math:`\mathrm{NCE}(Y \mid Z) = -H(Y \mid Z)`.

    Tran et al. (2019) show (Theorem 1) that the log-likelihood of the source
    representation re-trained on the target task is at least
    :math:`l_Z - H(Y \mid Z)`, so a larger NCE (closer to 0) predicts better transfer.

    Parameters
    ----------
    source_labels : array-like of shape (n,)
        Source labels :math:`Z` of the target inputs (for a source model: its arg-max
        predictions).
    target_labels : array-like of shape (n,)
        Target labels :math:`Y`; at least two classes.

    Returns
    -------
    float
        :math:`-H(Y \mid Z) \in [-\log|\mathcal Y|, 0]`, in nats; exactly ``0.0`` when
        :math:`Y` is a function of :math:`Z`. Higher is better.

    Raises
    ------
    TypeError, ValueError
        As :func:`conditional_entropy`; ValueError also for a single target class.

    See Also
    --------
    conditional_entropy, leep

    Examples
    --------
    >>> nce([5, 5, 7, 7], [0, 0, 1, 1])  # Y is a function of Z: nothing left to explain
    0.0
    >>> round(nce([5, 7, 5, 7], [0, 0, 1, 1]), 6)  # independent: -H(Y) = -log 2
    -0.693147
    """
    y, ky, z, kz = _codes(source_labels, target_labels)
    check_n_classes(ky, 2, "target_labels")
    return 0.0 - _conditional_entropy(y, ky, z, kz)  # 0.0 - x avoids -0.0


def hardness(labels: Any) -> float:
    r"""Task-hardness estimate :math:`H(Z \mid C)` of Tran et al. Sec. 4 (eq. 14).

    :math:`C` is the trivial task giving every input the same label, so
    :math:`H(Z \mid C) = H(Z) = -\sum_z \hat P(z) \log \hat P(z)`, the entropy of the
    empirical label distribution (nats). It upper-bounds the optimal training loss
    :math:`\mathrm{Hard}(T^Z)` (eq. 14); larger means harder.

    Parameters
    ----------
    labels : array-like of shape (n,)
        Labels of the task; a single class is allowed (hardness 0).

    Returns
    -------
    float
        :math:`H(Z) \in [0, \log |\mathcal Z|]`.

    Raises
    ------
    TypeError, ValueError
        As :func:`conditional_entropy`.

    Examples
    --------
    >>> round(hardness(["cat", "dog", "dog", "dog"]), 6)
    0.562335
    """
    codes, classes = as_labels(labels, "labels")
    return _conditional_entropy(codes, len(classes), np.zeros_like(codes), 1)
