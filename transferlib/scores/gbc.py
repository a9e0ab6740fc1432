"""GBC: Gaussian Bhattacharyya coefficient of class-conditional feature distributions.

Pándy, Agostinelli, Uijlings, Ferrari & Mensink, "Transferability Estimation using
Bhattacharyya Class Separability", CVPR 2022.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from transferlib.scores._backend import namespace
from transferlib.scores._validation import (
    as_features,
    as_labels,
    check_same_length,
    require_classes,
)

__all__ = ["gbc"]

_CHUNK_ELEMENTS = 4_000_000  # pairwise block size (classes x classes x dims), ~32 MB


def gbc(
    features: Any, target_labels: Any, gaussian: str = "diagonal", *, var_floor: float = 1e-8
) -> float:
    r"""Gaussian Bhattacharyya coefficient (GBC) of a feature space for a task.

    Each class :math:`c` is modelled as :math:`\mathcal N(\mu_c, \Sigma_c)` with diagonal
    :math:`\Sigma_c = \mathrm{diag}(v_c)` or spherical :math:`\Sigma_c = \bar v_c I`
    (:math:`\bar v_c` the mean of :math:`v_c`). With :math:`\Sigma = (\Sigma_i + \Sigma_j)/2`,

    .. math:: D_B(i, j) = \tfrac18 (\mu_i - \mu_j)^\top \Sigma^{-1} (\mu_i - \mu_j)
              + \tfrac12 \log \frac{\det\Sigma}{\sqrt{\det\Sigma_i \det\Sigma_j}},
              \qquad \mathrm{GBC} = -\sum_{i \ne j} e^{-D_B(i, j)}.

    Overlapping classes give Bhattacharyya coefficients near 1, so a larger (closer to 0)
    GBC means better separated classes. Higher is better.

    Parameters
    ----------
    features : array-like or tensor of shape (n, d)
        Source features on the target inputs. No dimensionality reduction is applied;
        project (e.g. PCA) beforehand if wanted, as Pándy et al. do in some experiments.
    target_labels : array-like of shape (n,)
        Target labels; at least two classes, each with at least two samples.
    gaussian : {"diagonal", "spherical"}
        Class covariance model.
    var_floor : float
        Added to every per-class variance, relative to the mean feature variance, so a
        feature that is constant within a class (e.g. a dead ReLU) does not give
        :math:`\log 0`.

    Returns
    -------
    float
        :math:`\mathrm{GBC} \in [-|\mathcal Y|(|\mathcal Y| - 1), 0]`.

    Notes
    -----
    Per-class moments come from O(nd) class sums (maximum-likelihood variances, :math:`1/n_c`).
    Pairs are processed in blocks, :math:`O(nd + |\mathcal Y|^2 d)` time and
    :math:`O(|\mathcal Y| d)` memory beyond one block.

    References
    ----------
    Pándy et al. (2022), CVPR, eq. 1-4.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1, 2], 20)
    >>> x = rng.standard_normal((60, 4)) + 2 * np.eye(3, 4)[y]
    >>> round(gbc(x, y), 4), round(gbc(x, y, gaussian="spherical"), 4)
    (-2.0203, -2.3103)
    """
    if gaussian not in ("diagonal", "spherical"):
        raise ValueError(f"gaussian must be 'diagonal' or 'spherical', got {gaussian!r}")
    xp = namespace(features)
    f = as_features(features, xp)
    codes, classes = as_labels(target_labels, "target_labels")
    n = check_same_length(features=f, target_labels=codes)
    k = len(classes)
    require_classes(k, 2)
    counts_np = np.bincount(codes, minlength=k)
    if counts_np.min() < 2:
        raise ValueError(
            f"class {classes[counts_np.argmin()]!r} has {counts_np.min()} sample; "
            "gbc needs at least two per class to estimate a variance"
        )
    f = f - xp.sum(f, axis=0, keepdims=True) / n  # GBC is shift invariant; avoids cancellation
    codes_xp = xp.asarray(codes, "int")
    counts = xp.asarray(counts_np)[:, None]
    means = xp.class_sums(f, codes_xp, k) / counts
    variances = xp.class_sums(f * f, codes_xp, k) / counts - means * means
    floor = var_floor * xp.item(xp.sum(f * f)) / (n * f.shape[1])
    variances = xp.maximum(variances, 0.0) + max(floor, 1e-300)
    if gaussian == "spherical":
        variances = xp.sum(variances, axis=1, keepdims=True) / f.shape[1]
    scale = 1.0 if gaussian == "diagonal" else float(f.shape[1])  # dims sharing one variance
    log_var = xp.log(variances)
    total = 0.0
    block = max(1, _CHUNK_ELEMENTS // (k * f.shape[1]))
    for start in range(0, k, block):
        stop = min(start + block, k)
        mean_var = 0.5 * (variances[start:stop, None, :] + variances[None, :, :])
        diff = means[start:stop, None, :] - means[None, :, :]
        distance = 0.125 * xp.sum(diff * diff / mean_var, axis=2) + 0.5 * scale * xp.sum(
            xp.log(mean_var) - 0.5 * (log_var[start:stop, None, :] + log_var[None, :, :]), axis=2
        )
        # drop the i == j terms (BC = 1) here: subtracting k afterwards would cancel
        # every digit when the off-diagonal coefficients are tiny
        rows = xp.asarray(np.arange(stop - start), "int")
        distance[rows, rows + start] = float("inf")
        total += xp.item(xp.sum(xp.exp(-distance)))
    return -total
