"""Log-likelihoods of Tran et al.'s Theorem 1 and its constructed head ``k-bar``.

A source network's softmax ``p_Z`` is mapped to target labels through the empirical
conditional ``P(y|z)`` of two training label sequences (Eq. 9 of the paper): the head
``k-bar``. Its training log-likelihood is at least ``l_Z - H(Y|Z)``, for any source network.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from transferlib.validation import as_labels, as_probabilities, check_same_length, to_numpy

__all__ = ["kbar_accuracy", "log_likelihood", "mixture_log_likelihood"]


def _class_codes(labels: Any, name: str, n_classes: int) -> np.ndarray:
    """Integer codes that index the ``n_classes`` columns of a probability matrix."""
    codes = to_numpy(labels)
    if labels is None or not np.issubdtype(codes.dtype, np.integer):
        got = "None" if labels is None else f"dtype {codes.dtype}"
        raise TypeError(f"{name} must be integer class codes, got {got}")
    if codes.ndim != 1 or codes.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {codes.shape}")
    if codes.min() < 0 or codes.max() >= n_classes:
        raise ValueError(f"{name} must lie in [0, {n_classes}), the columns of the probabilities")
    return codes


def _probabilities(probs: Any, name: str) -> np.ndarray:
    return to_numpy(as_probabilities(probs, name))


def _empirical_conditional(z: np.ndarray, y: np.ndarray, n_z: int, n_y: int) -> np.ndarray:
    """``P(y|z)`` counted on label codes, shape (n_z, n_y): the head ``k-bar`` of Eq. (9)."""
    joint = np.bincount(z * n_y + y, minlength=n_z * n_y).reshape(n_z, n_y).astype(np.float64)
    counts = joint.sum(axis=1, keepdims=True)
    # A source class absent from the training labels has no empirical conditional; any
    # distribution keeps the bound, so use the target marginal.
    marginal = joint.sum(axis=0) / z.size
    return np.where(counts > 0, joint / np.maximum(counts, 1), marginal)


def log_likelihood(probs: Any, labels: Any) -> float:
    """Mean log-probability (nats) of the true labels: ``l = (1/n) sum_i log p_i(y_i)``.

    Parameters
    ----------
    probs : array of shape (n, K)
        Predicted class probabilities; column ``k`` is class code ``k``.
    labels : array of shape (n,)
        Integer class codes in ``[0, K)``.

    Returns
    -------
    float
        The mean log-likelihood (``-inf`` if a true class has probability 0).
    """
    probs = _probabilities(probs, "probs")
    labels = _class_codes(labels, "labels", probs.shape[1])
    check_same_length(probs=probs, labels=labels)
    with np.errstate(divide="ignore"):
        return float(np.mean(np.log(probs[np.arange(labels.size), labels])))


def mixture_log_likelihood(source_probs: Any, source_labels: Any, target_labels: Any) -> float:
    """Training log-likelihood of the paper's constructed target head ``k-bar`` (Eq. 9).

    For each image the source head's probabilities ``p_Z`` are mapped to the target labels by
    ``p_Y(y) = sum_z P(y|z) p_Z(z)``, with ``P(y|z)`` the empirical conditional of the two
    training label sequences. The proof of Theorem 1 shows, for *any* source network,
    ``mixture_log_likelihood >= log_likelihood(source_probs, source_labels) - H(Y|Z)``.

    Parameters
    ----------
    source_probs : array of shape (n, K)
        Source-network probabilities on the training images; column ``k`` is source code ``k``.
    source_labels : array of shape (n,)
        Integer source codes in ``[0, K)`` of the same images.
    target_labels : array of shape (n,)
        Target labels of the same images (numbers, strings or bools).

    Returns
    -------
    float
        ``(1/n) sum_i log p_Y(y_i)`` in nats.
    """
    probs = _probabilities(source_probs, "source_probs")
    z = _class_codes(source_labels, "source_labels", probs.shape[1])
    y, classes = as_labels(target_labels, "target_labels")
    check_same_length(source_probs=probs, source_labels=z, target_labels=y)
    conditional = _empirical_conditional(z, y, probs.shape[1], classes.size)
    with np.errstate(divide="ignore"):
        return float(np.mean(np.log((probs @ conditional)[np.arange(y.size), y])))


def kbar_accuracy(
    train_source_labels: Any,
    train_target_labels: Any,
    test_source_probs: Any,
    test_target_labels: Any,
) -> float:
    """Test accuracy of the paper's constructed head ``k-bar`` used as a classifier.

    ``k-bar`` maps the source network's softmax through ``P(y|z)`` counted on the *training*
    labels (Eq. 9); it predicts the most probable target label. Unlike a linear head on the
    features, it reads any function of the source label off the source probabilities, however
    many source classes the function groups together.

    Parameters
    ----------
    train_source_labels, train_target_labels : arrays of shape (n,)
        Integer codes of the two tasks on the training images.
    test_source_probs : array of shape (m, K_Z)
        Source-network probabilities on the test images.
    test_target_labels : array of shape (m,)
        Integer target codes of the test images.
    """
    probs = _probabilities(test_source_probs, "test_source_probs")
    z = _class_codes(train_source_labels, "train_source_labels", probs.shape[1])
    y = _class_codes(train_target_labels, "train_target_labels", np.iinfo(np.int64).max)
    check_same_length(train_source_labels=z, train_target_labels=y)
    y_test = _class_codes(test_target_labels, "test_target_labels", np.iinfo(np.int64).max)
    check_same_length(test_source_probs=probs, test_target_labels=y_test)
    n_y = int(max(y.max(), y_test.max())) + 1
    predicted = (probs @ _empirical_conditional(z, y, probs.shape[1], n_y)).argmax(axis=1)
    return float(np.mean(predicted == y_test))
