"""Scores computed from label sequences only: conditional entropy, NCE and hardness.

Tran, Nguyen & Hassner, "Transferability and Hardness of Supervised Classification
Tasks", ICCV 2019 (eq. 6-8 and Sec. 4).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from transferlib.scores._validation import as_labels, check_same_length, require_classes

__all__ = ["conditional_entropy", "hardness", "nce"]


def _joint_counts(y: np.ndarray, ky: int, z: np.ndarray, kz: int) -> np.ndarray:
    """(ky, kz) contingency table of two code sequences via one bincount."""
    return np.bincount(y * kz + z, minlength=ky * kz).reshape(ky, kz).astype(np.float64)


def conditional_entropy(target_labels: Any, source_labels: Any) -> float:
    r"""Conditional entropy :math:`H(Y \mid Z)` of two label sequences, in nats.

    With the empirical joint :math:`\hat P(y, z) = \frac1n |\{i : y_i = y, z_i = z\}|`
    (Tran et al. eq. 6) and its marginal :math:`\hat P(z)` (eq. 8),

    .. math:: H(Y \mid Z) = -\sum_{y, z} \hat P(y, z) \log \frac{\hat P(y, z)}{\hat P(z)}
              \qquad \text{(eq. 7)}

    with the convention :math:`0 \log 0 = 0` (empty cells contribute nothing).

    Parameters
    ----------
    target_labels : array-like of shape (n,)
        Labels :math:`Y` of the target task; any integers, strings or bools.
    source_labels : array-like of shape (n,)
        Labels :math:`Z` of the source task for the same inputs, in the same order.

    Returns
    -------
    float
        :math:`H(Y \mid Z) \in [0, \log |\mathcal Y|]`; 0 when :math:`Y` is a function of
        :math:`Z`, :math:`H(Y)` when the two are independent.

    Notes
    -----
    Complexity :math:`O(n + |\mathcal Y||\mathcal Z|)`. Torch tensors are accepted and
    read on the CPU (labels are small).

    References
    ----------
    Tran, Nguyen, Hassner (2019), ICCV, eq. 6-7.

    Examples
    --------
    >>> conditional_entropy([0, 0, 1, 1], ["a", "b", "a", "b"])  # independent: H(Y) = log 2
    0.6931471805599453
    """
    y, y_classes = as_labels(target_labels, "target_labels")
    z, z_classes = as_labels(source_labels, "source_labels")
    n = check_same_length(target_labels=y, source_labels=z)
    joint = _joint_counts(y, len(y_classes), z, len(z_classes)) / n
    marginal = joint.sum(axis=0, keepdims=True)
    nonzero = joint > 0
    ratio = joint[nonzero] / np.broadcast_to(marginal, joint.shape)[nonzero]
    # 0.0 - x, not -x: an exact zero must come out as 0.0, never -0.0.
    return 0.0 - float((joint[nonzero] * np.log(ratio)).sum())


def nce(target_labels: Any, source_labels: Any) -> float:
    r"""Negative conditional entropy :math:`\mathrm{NCE}(Y \mid Z) = -H(Y \mid Z)`.

    Tran et al. (2019) show (Theorem 1) that the log-likelihood of the source
    representation re-trained on the target task is at least
    :math:`l_Z - H(Y \mid Z)`, so a larger NCE (closer to 0) predicts better transfer.

    Parameters
    ----------
    target_labels : array-like of shape (n,)
        Target labels :math:`Y`; at least two classes.
    source_labels : array-like of shape (n,)
        Source labels :math:`Z` (for a source model: its arg-max predictions).

    Returns
    -------
    float
        :math:`-H(Y \mid Z) \le 0`, in nats. Higher is better.

    See Also
    --------
    conditional_entropy, leep

    Examples
    --------
    >>> nce([0, 0, 1, 1], [5, 5, 7, 7])  # Y is a function of Z: nothing left to explain
    0.0
    """
    _, classes = as_labels(target_labels, "target_labels")
    require_classes(len(classes), 2)
    return 0.0 - conditional_entropy(target_labels, source_labels)  # 0.0 - x avoids -0.0


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

    Examples
    --------
    >>> round(hardness(["cat", "dog", "dog", "dog"]), 6)
    0.562335
    """
    codes, _ = as_labels(labels, "labels")
    return conditional_entropy(codes, np.zeros_like(codes))
