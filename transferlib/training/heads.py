"""Re-training a classifier head on frozen features, one task or many at once.

Three protocols from the papers, all on per-task standardised features
(zero mean, unit variance estimated on that task's training samples):

``"logistic"``
    Multinomial logistic regression with an L2 penalty, minimised to
    convergence by full-batch L-BFGS. Per task the objective is
    ``mean_i CE(y_i, W x_i + b) + ||W||^2 / (2 C n)`` (``n`` training samples,
    intercept not penalised), the same as scikit-learn's
    ``LogisticRegression(C=C)`` with the multinomial loss.
``"sgd"``
    The LEEP protocol (Nguyen et al., 2020, §5): cross-entropy, plain SGD
    with learning rate 0.01, batch size 10, 100 epochs by default, no
    penalty, weights initialised at zero.
``"linear_svm"``
    Tran et al.'s (2019) linear SVM: scikit-learn's ``LinearSVC`` (one-vs-rest,
    squared hinge, ``C``). An SVM gives decision values, not probabilities;
    log-likelihoods use ``softmax(decision / T)`` with one temperature ``T``
    per task fitted by minimising the training negative log-likelihood (for a
    binary task the decision value ``d`` becomes the logits ``(0, d)``).

:func:`retrain_heads` trains T heads on the same feature matrix jointly: the
weights form one ``(T, D, K_max)`` tensor, classes a task lacks are masked
(logit ``-inf``), and samples outside a task carry the label ``-1``. The joint
objective is the sum of the per-task objectives, so its minimiser is each
task's own minimiser; :func:`retrain_head` is the case T = 1. When every task
uses every training sample, the logistic solver standardises once and, if
there are fewer samples than feature dimensions, optimises in the row space of
the standardised features (``W = V A`` with ``V`` orthonormal): exact for an L2
penalty and several times cheaper for 1280-d features.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from transferlib._progress import tqdm

from transferlib.training.device import resolve_device

__all__ = ["HEAD_METHODS", "HeadResult", "macro_f1", "retrain_head", "retrain_heads"]

HEAD_METHODS = ("logistic", "sgd", "linear_svm")


@dataclass(frozen=True)
class HeadResult:
    """Quality of a re-trained head.

    Attributes
    ----------
    accuracy : float
        Test accuracy.
    macro_f1 : float
        Unweighted mean of per-class F1 over the classes present in the test
        labels or predictions (scikit-learn's ``f1_score(average="macro")``);
        LEEP §5.3 uses it on imbalanced tasks.
    test_log_likelihood, train_log_likelihood : float
        Mean ``log p(y | x)`` per sample in nats. The training value is the
        empirical quantity of Tran et al.'s Eq. (5).
    train_accuracy : float
    method : str
    num_classes : int
        Classes in the task's training labels.
    n_train, n_test : int
    """

    accuracy: float
    macro_f1: float
    test_log_likelihood: float
    train_log_likelihood: float
    train_accuracy: float
    method: str
    num_classes: int
    n_train: int
    n_test: int


# --------------------------------------------------------------------------- validation


def _check_features(features: Any, name: str) -> torch.Tensor:
    array = features.detach().cpu().numpy() if isinstance(features, torch.Tensor) else np.asarray(features)
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-d (n_samples, n_features), got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise TypeError(f"{name} must be real numbers, got {array.dtype}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf")
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def _check_label_sets(label_sets: Any, n: int, name: str) -> np.ndarray:
    """(T, n) int64 matrix; -1 marks samples outside a task."""
    if isinstance(label_sets, np.ndarray) and label_sets.ndim == 2:
        matrix = label_sets
    else:
        rows = [np.asarray(labels) for labels in label_sets]
        if not rows:
            raise ValueError(f"{name} is empty: no tasks")
        for t, row in enumerate(rows):
            if row.ndim != 1:
                raise ValueError(f"{name}[{t}] must be 1-d, got shape {row.shape}")
            if len(row) != n:
                raise ValueError(f"{name}[{t}] has {len(row)} labels but the features have {n} rows")
        matrix = np.stack(rows)
    if matrix.shape[0] == 0:
        raise ValueError(f"{name} is empty: no tasks")
    if matrix.shape[1] != n:
        raise ValueError(f"{name} has {matrix.shape[1]} labels per task but the features have {n} rows")
    if not np.issubdtype(matrix.dtype, np.integer):
        raise TypeError(f"{name} must hold integer class codes, got {matrix.dtype}")
    if (matrix < -1).any():
        raise ValueError(f"{name} must be class codes >= 0, or -1 for samples outside a task")
    return matrix.astype(np.int64)


def _encode(train: np.ndarray, test: np.ndarray, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map each task's training classes to 0..K_t-1; return codes and K per task."""
    train_codes = np.full_like(train, -1)
    test_codes = np.full_like(test, -1)
    num_classes = np.zeros(len(train), dtype=np.int64)
    for t, name in enumerate(names):
        classes = np.unique(train[t][train[t] >= 0])
        if classes.size < 2:
            raise ValueError(
                f"task {name!r} has {classes.size} class(es) in its training labels; a head needs at least two"
            )
        test_row = test[t][test[t] >= 0]
        if test_row.size == 0:
            raise ValueError(f"task {name!r} has no test samples")
        unseen = np.setdiff1d(test_row, classes)
        if unseen.size:
            raise ValueError(f"task {name!r}: test labels {unseen.tolist()} never occur in its training labels")
        train_codes[t][train[t] >= 0] = np.searchsorted(classes, train[t][train[t] >= 0])
        test_codes[t][test[t] >= 0] = np.searchsorted(classes, test_row)
        num_classes[t] = classes.size
    return train_codes, test_codes, num_classes


# --------------------------------------------------------------------------- metrics


def macro_f1(y_true: torch.Tensor, y_pred: torch.Tensor, valid: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Macro-averaged F1 per task for (T, n) label/prediction matrices.

    Classes count when they occur in the task's true labels or predictions,
    as in scikit-learn's ``f1_score(average="macro")``.
    """
    weight = valid.to(torch.float64)
    tasks = y_true.shape[0]
    true_count = torch.zeros(tasks, num_classes, dtype=torch.float64, device=y_true.device)
    pred_count = torch.zeros_like(true_count)
    hits = torch.zeros_like(true_count)
    safe_true = y_true.clamp(min=0)
    true_count.scatter_add_(1, safe_true, weight)
    pred_count.scatter_add_(1, y_pred, weight)
    hits.scatter_add_(1, safe_true, weight * (y_true == y_pred))
    present = (true_count + pred_count) > 0
    f1 = torch.where(present, 2 * hits / (true_count + pred_count).clamp(min=1), 0.0)
    return f1.sum(1) / present.sum(1)


def _scores(logits: torch.Tensor, codes: torch.Tensor, kmax: int) -> dict[str, torch.Tensor]:
    """Accuracy, macro-F1 and mean log-likelihood per task from masked logits (n, T, K)."""
    logits = logits.transpose(0, 1)
    valid = codes >= 0
    count = valid.sum(1).to(torch.float64)
    log_probs = logits.double().log_softmax(dim=2)
    safe = codes.clamp(min=0)
    log_lik = log_probs.gather(2, safe[..., None])[..., 0]
    pred = logits.argmax(dim=2)
    correct = (pred == codes) & valid
    return {
        "accuracy": correct.sum(1) / count,
        "macro_f1": macro_f1(codes, pred, valid, kmax),
        "log_likelihood": torch.where(valid, log_lik, 0.0).sum(1) / count,
    }


# --------------------------------------------------------------------------- solvers


def _standardisation(x: torch.Tensor, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-task mean and standard deviation (T, D) over each task's training rows."""
    # float64: E[x^2] - E[x]^2 loses digits in float32 when |mean| >> std
    weight = (codes >= 0).double()
    x64 = x.double()
    count = weight.sum(1, keepdim=True)
    mean = weight @ x64 / count
    var = (weight @ (x64 * x64) / count - mean**2).clamp(min=0)
    std = var.sqrt()
    std = torch.where(std > 1e-6 * (1 + mean.abs()), std, torch.ones_like(std))
    return mean.to(x.dtype), std.to(x.dtype)


class _LinearHeads:
    """T linear heads on standardised features.

    ``weight`` is (D, T, K) so that the logits of all heads are one matrix
    product ``x @ weight.view(D, T * K)``; standardisation is folded into the
    weights (``W z = (W / std) x - (W / std) mean``) instead of materialising
    a standardised copy of ``x`` per task. ``mean=None`` means ``x`` is
    already standardised.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, mean: torch.Tensor | None,
                 std: torch.Tensor | None, class_mask: torch.Tensor) -> None:
        self.weight, self.bias, self.class_mask = weight, bias, class_mask
        self.folded = mean is not None
        if self.folded:
            self.inv_std = (1.0 / std).T[:, :, None]  # (D, T, 1)
            self.mean = mean.T[:, :, None]  # (D, T, 1)
        self.neg_inf = torch.where(class_mask, 0.0, -math.inf).to(weight.dtype)  # (T, K)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(n, T, K) logits; classes a task lacks get ``-inf``."""
        dim, tasks, kmax = self.weight.shape
        scaled, offset = self.weight, self.bias
        if self.folded:
            scaled = self.weight * self.inv_std
            offset = self.bias - (scaled * self.mean).sum(0)
        out = (x @ scaled.reshape(dim, tasks * kmax)).view(-1, tasks, kmax)
        return out + (offset + self.neg_inf)


def _log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """log-softmax over a short last axis, elementwise (faster than the generic kernel here)."""
    top = logits.amax(dim=-1, keepdim=True)
    return logits - top - (logits - top).exp().sum(dim=-1, keepdim=True).log()


def _fit_logistic(x: torch.Tensor, codes: torch.Tensor, class_mask: torch.Tensor, *, C: float,
                  max_iter: int, tol: float, **_: Any) -> _LinearHeads:
    tasks, kmax = class_mask.shape
    mean, std = _standardisation(x, codes)
    shared = bool((codes >= 0).all())
    basis = None
    if shared:
        # Every task uses every row: standardise once, and when n < D solve in the row
        # space of the standardised features (W = basis @ A with orthonormal basis; exact
        # for an L2 penalty, since a component outside the row space only adds penalty).
        inputs = (x - mean[0]) / std[0]
        if inputs.shape[0] < inputs.shape[1]:
            _, sv, vh = torch.linalg.svd(inputs, full_matrices=False)
            basis = vh[sv > sv[0] * 1e-6].T  # (D, r)
            inputs = inputs @ basis
    else:
        inputs = x
    heads = _LinearHeads(torch.zeros(inputs.shape[1], tasks, kmax, dtype=x.dtype, requires_grad=True),
                         torch.zeros(tasks, kmax, dtype=x.dtype, requires_grad=True),
                         None if shared else mean, None if shared else std, class_mask)
    codes_nt = codes.T  # (n, T)
    valid = codes_nt >= 0
    count = valid.sum(0).to(x.dtype)
    safe = codes_nt.clamp(min=0)[..., None]
    optimizer = torch.optim.LBFGS([heads.weight, heads.bias], lr=1.0, max_iter=max_iter,
                                  tolerance_grad=tol, tolerance_change=1e-12, history_size=20,
                                  line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        log_lik = _log_softmax(heads.logits(inputs)).gather(2, safe)[..., 0]
        nll = -torch.where(valid, log_lik, 0.0).sum(0) / count
        penalty = (heads.weight**2).sum(dim=(0, 2)) / (2 * C * count)
        loss = (nll + penalty).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    state = optimizer.state[optimizer._params[0]]
    if state.get("n_iter", 0) >= max_iter:
        warnings.warn(f"logistic heads: L-BFGS stopped after max_iter={max_iter} iterations "
                      f"before reaching tol={tol}", RuntimeWarning, stacklevel=3)
    weight, bias = heads.weight.detach(), heads.bias.detach()
    if basis is not None:
        weight = (basis @ weight.view(basis.shape[1], -1)).view(-1, tasks, kmax)
    return _LinearHeads(weight, bias, mean, std, class_mask)


def _task_stream(seed: int, name: str) -> int:
    """Seed of the named stream ``[seed, name]``: a task shuffles the same way whichever other
    tasks share its batch (never ``seed + t``, which collides with another seed's streams)."""
    word = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
    return int(np.random.SeedSequence([seed, word]).generate_state(1)[0])


def _fit_sgd(x: torch.Tensor, codes: torch.Tensor, class_mask: torch.Tensor, *, lr: float,
             batch_size: int, epochs: int, seed: int, names: Sequence[str], progress: bool,
             **_: Any) -> _LinearHeads:
    tasks, kmax = class_mask.shape
    dim, device = x.shape[1], x.device
    mean, std = _standardisation(x, codes)
    weight = torch.zeros(tasks, dim, kmax, dtype=x.dtype, device=device)
    bias = torch.zeros(tasks, kmax, dtype=x.dtype, device=device)
    counts = (codes >= 0).sum(1)
    nmax = int(counts.max())
    # Row positions of each task's samples, padded to nmax.
    positions = torch.zeros(tasks, nmax, dtype=torch.long, device=device)
    for t in range(tasks):
        rows = torch.nonzero(codes[t] >= 0)[:, 0]
        positions[t, : len(rows)] = rows
    generators = [torch.Generator().manual_seed(_task_stream(seed, name)) for name in names]
    steps = math.ceil(nmax / batch_size)
    slot = torch.arange(batch_size, device=device)
    neg_inf = torch.where(class_mask, 0.0, -math.inf).to(x.dtype)[:, None, :]
    task_index = torch.arange(tasks, device=device)[:, None]
    for _epoch in tqdm(range(epochs), desc="sgd heads", disable=not progress, leave=False):
        order = torch.zeros(tasks, nmax, dtype=torch.long, device=device)
        for t in range(tasks):
            n_t = int(counts[t])
            shuffle = torch.randperm(n_t, generator=generators[t]).to(device)
            order[t, :n_t] = positions[t, shuffle]
        for step in range(steps):
            start = step * batch_size
            idx = order[:, start : start + batch_size]
            valid = (start + slot[: idx.shape[1]])[None, :] < counts[:, None]
            z = (x[idx] - mean[:, None, :]) / std[:, None, :]  # (T, B, D) standardised
            logits = torch.baddbmm(bias[:, None, :], z, weight) + neg_inf
            grad = logits.softmax(dim=2)
            batch_slot = torch.arange(idx.shape[1], device=device)[None, :]
            grad[task_index, batch_slot, codes[task_index, idx].clamp(min=0)] -= 1
            grad *= (valid / valid.sum(1, keepdim=True).clamp(min=1))[..., None]
            weight -= lr * torch.bmm(z.transpose(1, 2), grad)
            bias -= lr * grad.sum(1)
    return _LinearHeads(weight.permute(1, 0, 2).contiguous(), bias, mean, std, class_mask)


def _inverse_temperature(decision: np.ndarray, labels: np.ndarray) -> float:
    """Scale ``s`` minimising the training NLL of ``softmax(s * decision)``.

    Searched on a log scale in [e^-10, e^10]; the bound keeps separable data
    (optimum at ``s -> inf``) finite.
    """
    from scipy.optimize import minimize_scalar
    from scipy.special import logsumexp

    picked = decision[np.arange(len(labels)), labels]

    def nll(log_scale: float) -> float:
        scale = math.exp(log_scale)
        return float((logsumexp(scale * decision, axis=1) - scale * picked).mean())

    return math.exp(minimize_scalar(nll, bounds=(-10.0, 10.0), method="bounded").x)


def _fit_svm(x: torch.Tensor, codes: torch.Tensor, class_mask: torch.Tensor, *, C: float,
             max_iter: int, tol: float, progress: bool, **_: Any) -> _LinearHeads:
    from sklearn.svm import LinearSVC

    tasks, kmax = class_mask.shape
    mean, std = _standardisation(x, codes)
    weight = torch.zeros(tasks, x.shape[1], kmax, dtype=torch.float64)
    bias = torch.zeros(tasks, kmax, dtype=torch.float64)
    for t in tqdm(range(tasks), desc="svm heads", disable=not progress, leave=False):
        rows = codes[t] >= 0
        z = ((x[rows] - mean[t]) / std[t]).double().cpu().numpy()
        y = codes[t][rows].cpu().numpy()
        svm = LinearSVC(C=C, max_iter=max_iter, tol=tol, dual="auto").fit(z, y)
        coef, intercept = svm.coef_.T, svm.intercept_
        if coef.shape[1] == 1:  # binary: decision d -> logits (0, d)
            coef = np.hstack([np.zeros_like(coef), coef])
            intercept = np.array([0.0, intercept[0]])
        scale = _inverse_temperature(z @ coef + intercept, y)
        k = coef.shape[1]
        weight[t, :, :k] = torch.from_numpy(coef * scale)
        bias[t, :k] = torch.from_numpy(intercept * scale)
    weight = weight.permute(1, 0, 2).contiguous().to(x.device, x.dtype)
    return _LinearHeads(weight, bias.to(x.device, x.dtype), mean, std, class_mask)


_SOLVERS = {"logistic": _fit_logistic, "sgd": _fit_sgd, "linear_svm": _fit_svm}
_DEFAULTS = {
    "logistic": {"C": 1.0, "max_iter": 1000, "tol": 1e-5},
    "sgd": {"lr": 0.01, "batch_size": 10, "epochs": 100, "seed": 0},
    "linear_svm": {"C": 1.0, "max_iter": 10000, "tol": 1e-4},
}


# --------------------------------------------------------------------------- public API


def retrain_heads(
    train_features: Any,
    train_label_sets: Any,
    test_features: Any,
    test_label_sets: Any,
    method: str = "logistic",
    *,
    task_names: Sequence[str] | None = None,
    device: str | torch.device = "auto",
    progress: bool = False,
    **kwargs: Any,
) -> pd.DataFrame:
    """Train one head per task on shared frozen features, all tasks at once.

    Parameters
    ----------
    train_features : array (n, D)
        Frozen features of the training images (shared by all tasks).
    train_label_sets : int array (T, n) or sequence of T int arrays of length n
        Class codes per task; ``-1`` marks a sample that is not in that task
        (tasks on different subsets of the images).
    test_features : array (m, D)
    test_label_sets : int array (T, m) or sequence of T arrays of length m
    method : {"logistic", "sgd", "linear_svm"}
        See the module docstring. ``"linear_svm"`` runs scikit-learn per task
        (no batched solver).
    task_names : sequence of str, optional
        Names for the ``task`` column (default ``"0"``, ``"1"``, ...).
    device : str or torch.device
        Where the batched solvers run (``"auto"``: a GPU when there is one).
    progress : bool
    **kwargs
        Method options: logistic ``C=1.0, max_iter=1000, tol=1e-5``; sgd
        ``lr=0.01, batch_size=10, epochs=100, seed=0`` (each task shuffles with the named
        stream ``[seed, task name]``, so its head does not depend on the other tasks);
        linear_svm ``C=1.0, max_iter=10000, tol=1e-4``.

    Returns
    -------
    pandas.DataFrame
        One row per task with the fields of :class:`HeadResult` and ``task``.
    """
    if method not in _SOLVERS:
        raise ValueError(f"unknown head method {method!r}; choose from {HEAD_METHODS}")
    unknown = set(kwargs) - set(_DEFAULTS[method])
    if unknown:
        raise TypeError(f"unexpected option(s) {sorted(unknown)} for method {method!r}; "
                        f"valid: {sorted(_DEFAULTS[method])}")
    options = {**_DEFAULTS[method], **kwargs}
    x_train = _check_features(train_features, "train_features")
    x_test = _check_features(test_features, "test_features")
    if x_train.shape[1] != x_test.shape[1]:
        raise ValueError(f"train_features have {x_train.shape[1]} columns, test_features {x_test.shape[1]}")
    train_sets = _check_label_sets(train_label_sets, x_train.shape[0], "train_label_sets")
    test_sets = _check_label_sets(test_label_sets, x_test.shape[0], "test_label_sets")
    if len(train_sets) != len(test_sets):
        raise ValueError(f"{len(train_sets)} training label sets but {len(test_sets)} test label sets")
    names = [str(t) for t in range(len(train_sets))] if task_names is None else [str(n) for n in task_names]
    if len(names) != len(train_sets):
        raise ValueError(f"{len(names)} task_names for {len(train_sets)} tasks")
    train_codes, test_codes, num_classes = _encode(train_sets, test_sets, names)
    kmax = int(num_classes.max())
    class_mask = torch.arange(kmax)[None, :] < torch.from_numpy(num_classes)[:, None]

    dev = resolve_device(device)
    train_codes_t = torch.from_numpy(train_codes)
    heads = _SOLVERS[method](x_train.to(dev), train_codes_t.to(dev), class_mask.to(dev),
                             names=names, progress=progress, **options)
    with torch.no_grad():
        train_scores = _scores(heads.logits(x_train.to(dev)).cpu(), train_codes_t, kmax)
        test_scores = _scores(heads.logits(x_test.to(dev)).cpu(), torch.from_numpy(test_codes), kmax)
    return pd.DataFrame({
        "task": names,
        "accuracy": test_scores["accuracy"].numpy(),
        "macro_f1": test_scores["macro_f1"].numpy(),
        "test_log_likelihood": test_scores["log_likelihood"].numpy(),
        "train_log_likelihood": train_scores["log_likelihood"].numpy(),
        "train_accuracy": train_scores["accuracy"].numpy(),
        "method": method,
        "num_classes": num_classes,
        "n_train": (train_codes >= 0).sum(1),
        "n_test": (test_codes >= 0).sum(1),
    })


def retrain_head(
    train_features: Any,
    train_labels: Any,
    test_features: Any,
    test_labels: Any,
    method: str = "logistic",
    **kwargs: Any,
) -> HeadResult:
    """Train a new classifier head on frozen features and evaluate it.

    Parameters
    ----------
    train_features : array (n, D)
    train_labels : int array (n,)
        Class codes (any non-negative integers; at least two classes).
    test_features : array (m, D)
    test_labels : int array (m,)
        Only classes that occur in ``train_labels``.
    method : {"logistic", "sgd", "linear_svm"}
        See the module docstring.
    **kwargs
        Method options and ``device``/``progress``, as for :func:`retrain_heads`.

    Returns
    -------
    HeadResult

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 50)
    >>> x = rng.normal(size=(100, 5)) + 3 * y[:, None]
    >>> retrain_head(x, y, x, y, method="logistic").accuracy
    1.0
    """
    for name, labels in (("train_labels", train_labels), ("test_labels", test_labels)):
        if np.ndim(labels) != 1:
            raise ValueError(f"{name} must be 1-d, got shape {np.shape(labels)}")
    table = retrain_heads(train_features, [train_labels], test_features, [test_labels], method, **kwargs)
    row = table.iloc[0]
    counts = ("num_classes", "n_train", "n_test")
    return HeadResult(**{
        name: row[name] if name == "method" else int(row[name]) if name in counts else float(row[name])
        for name in HeadResult.__dataclass_fields__
    })
