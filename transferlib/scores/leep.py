"""LEEP and the expected empirical predictor (EEP).

Nguyen, Hassner, Archambeau & Seeger, "LEEP: A New Measure to Evaluate
Transferability of Learned Representations", ICML 2020, Sec. 2-3.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from transferlib.scores._backend import Namespace, namespace
from transferlib.scores._validation import as_labels, as_probs, check_same_length, require_classes

__all__ = ["eep_predictions", "leep"]


def _eep_conditional(xp: Namespace, probs: Any, codes: Any, n_classes: int) -> Any:
    r"""Return :math:`\hat P(y \mid z)` as a (|Y|, |Z|) matrix (columns sum to 1 or are 0)."""
    joint = xp.class_sums(probs, codes, n_classes) / probs.shape[0]  # eq. 1
    marginal = xp.sum(joint, axis=0, keepdims=True)
    # A source class with zero total mass has theta_z = 0 on every input, so its column is
    # never used; 0 instead of 0/0 keeps the result free of NaN.
    safe = xp.where(marginal > 0, marginal, 1.0)
    return joint / safe


def _prepare(source_probs: Any, target_labels: Any) -> tuple[Namespace, Any, Any, int]:
    xp = namespace(source_probs)
    probs = as_probs(source_probs, xp)
    codes, classes = as_labels(target_labels, "target_labels")
    check_same_length(source_probs=probs, target_labels=codes)
    require_classes(len(classes), 2)
    return xp, probs, xp.asarray(codes, "int"), len(classes)


def eep_predictions(source_probs: Any, target_labels: Any) -> np.ndarray | Any:
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
        Source-model output distributions :math:`\theta(x_i)` on the target inputs.
    target_labels : array-like of shape (n,)
        Target labels (ints or strings); at least two classes. Column ``j`` of the
        result is the ``j``-th class in sorted order (``numpy.unique``).

    Returns
    -------
    ndarray or tensor of shape (n, |Y|)
        Rows are distributions over the target classes; a tensor (same device) for
        torch input, float64.

    Notes
    -----
    Complexity :math:`O(n |Z| |Y|)` (one GEMM) plus :math:`O(n|Z|)` for the joint.
    """
    xp, probs, codes, k = _prepare(source_probs, target_labels)
    return probs @ _eep_conditional(xp, probs, codes, k).T


def leep(source_probs: Any, target_labels: Any) -> float:
    r"""Log expected empirical prediction (LEEP) of a source model on a target set.

    .. math:: T(\theta, \mathcal D) = \frac1n \sum_{i=1}^n
              \log \Big( \sum_{z \in \mathcal Z} \hat P(y_i \mid z)\, \theta(x_i)_z \Big)
              \qquad \text{(Nguyen et al. eq. 2)}

    the average log-likelihood of the EEP (see :func:`eep_predictions`). It lies between
    :math:`\mathrm{NCE}(Y \mid Z) + \frac1n\sum_i \log\theta(x_i)_{z_i}` with
    :math:`z_i = \arg\max_z \theta(x_i)_z` (Property 2) and the log-likelihood of the best
    re-trained head when that class contains the EEP (Property 1). Higher is better.

    Parameters
    ----------
    source_probs : array-like or tensor of shape (n, |Z|)
        Source-model probabilities (non-negative rows summing to 1 within 1e-5; logits
        are rejected). Torch input is computed with torch on its device.
    target_labels : array-like of shape (n,)
        Target labels; at least two classes.

    Returns
    -------
    float
        LEEP in nats, :math:`\le 0`.

    Notes
    -----
    Convention: a source class receiving no probability mass on the target set
    contributes nothing (no NaN), as argued in :func:`eep_predictions`. Some public
    copies divide 0/0 there and return NaN. Only the label column of the EEP is
    formed, so the cost is :math:`O(n|Z|)` (class sums by a sparse one-hot product).

    References
    ----------
    Nguyen et al. (2020), ICML, eq. 1-2, Properties 1-2.

    Examples
    --------
    >>> round(leep([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], [0, 1, 0]), 6)
    -0.408691
    """
    xp, probs, codes, k = _prepare(source_probs, target_labels)
    conditional = _eep_conditional(xp, probs, codes, k)
    likelihood = xp.sum(probs * conditional[codes], axis=1)
    return xp.item(xp.sum(xp.log(likelihood))) / probs.shape[0]
