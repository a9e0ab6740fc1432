"""Re-training a classifier head on frozen features, one task or many at once.

Three protocols from the papers, all on per-task standardised features (zero mean, unit variance
estimated on that task's training samples):

``"logistic"``
    Logistic regression with an L2 penalty, minimised by L-BFGS: scikit-learn's
    ``LogisticRegression(C=C)`` model. A task with ``K >= 3`` classes fits the multinomial
    (softmax) model with ``K`` penalised weight vectors; a binary task fits the binomial model
    with **one** weight vector (the logit of the second class; the first is fixed at 0), as
    scikit-learn does. The objective per task is
    ``mean_i CE(y_i, W x_i + b) + ||W||^2 / (2 C n)`` (``n`` training samples, intercept not
    penalised). L-BFGS (in float32, from zero) stops for a task when the largest absolute entry
    of its gradient is at most ``tol``, when float32 cannot decrease its objective further, or
    after ``max_iter`` iterations. The defaults, ``tol=1e-4`` and ``max_iter=100``, are
    scikit-learn's stopping rule, which gives the test accuracy of the converged solution or
    better at a fraction of the cost (``benchmarks/bench_heads.py``); ask for ``tol=1e-6,
    max_iter=2000`` when the optimum itself matters (a bound on the training log-likelihood).
    ``ftol`` (default 0, off, as scikit-learn) also stops a task at the first accepted step (after
    the first) that lowers its objective by at most ``ftol`` relative (SciPy's test); with a weak
    penalty the last iterations of the default rule only fit the training set more tightly, and
    ``ftol=3e-3`` gave better test accuracy and log-likelihood in about a third of the
    iterations (``benchmarks/bench_heads.py``). The ``iterations`` column of
    :func:`retrain_heads` says where each task stopped.
``"sgd"``
    The LEEP protocol (Nguyen et al., 2020, §5): a new softmax layer with one output per class,
    cross-entropy, plain SGD with learning rate 0.01, batch size 10, 100 epochs by default, no
    penalty, weights initialised at zero.
``"linear_svm"``
    Tran et al.'s (2019) linear SVM: scikit-learn's ``LinearSVC`` (one-vs-rest, squared hinge,
    ``C``). An SVM gives decision values, not probabilities; log-likelihoods use
    ``softmax(decision / T)`` with one temperature ``T`` per task fitted by minimising the
    training negative log-likelihood (for a binary task the decision value ``d`` becomes the
    logits ``(0, d)``).

:func:`retrain_heads` trains T heads on the same feature matrix; samples outside a task carry
the label ``-1``. The tasks are independent problems, and each is solved as its own problem:

* **No padding.** The logistic weights of all tasks sit side by side as the columns of one
  matrix (``K_t`` columns per task, one for a binary task), so one matrix product gives every
  task's logits, and the softmax runs on each task's segment of columns.
* **Per-task L-BFGS.** The logistic solver runs one L-BFGS per task, vectorised: each task has
  its own curvature history, step length and stopping test, so a task stops when *it* has
  converged, not when the hardest task has.
* **Row groups.** Tasks are grouped so that the rows a group's matrix product touches are mostly
  rows of its tasks (tasks on small, different subsets of the samples are solved apart).
* **Exact reductions.** When every task of a group uses the same rows and there are fewer rows
  than feature dimensions, the solvers work in the row space of the standardised features
  (``W = V A`` with ``V`` orthonormal): exact for the L2 penalty (a component outside the row
  space only adds penalty) and for SGD from zero (every update lies in the row space). SGD
  applies the same reduction per task when a task has fewer samples than dimensions.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from transferlib._progress import tqdm
from transferlib.training.device import resolve_device
from transferlib.validation import check_real

__all__ = ["HEAD_METHODS", "HeadResult", "macro_f1", "retrain_head", "retrain_heads"]

HEAD_METHODS = ("logistic", "sgd", "linear_svm")

# Padded (n, T, K_max) views of a group are kept below this many elements (about 64 MB).
_PADDED_BUDGET = 1 << 24
# The weights of an SGD bucket, (T, d, K_max), stay below this many elements: every step reads
# and writes all of them, and a bucket that stays in the processor's cache runs several times
# faster than one that streams from memory.
_SGD_WEIGHT_BUDGET = 1 << 24
# A row group's matrix product may touch at most this many times the (row, class) pairs its
# tasks use.
_MAX_WASTE = 2.0


@dataclass(frozen=True)
class HeadResult:
    """Quality of a re-trained head.

    Attributes
    ----------
    accuracy : float
        Test accuracy.
    macro_f1 : float
        Unweighted mean of per-class F1 over the classes present in the test labels or
        predictions (scikit-learn's ``f1_score(average="macro")``); LEEP §5.3 uses it on
        imbalanced tasks.
    test_log_likelihood, train_log_likelihood : float
        Mean ``log p(y | x)`` per sample in nats. The training value is the empirical quantity
        of Tran et al.'s Eq. (5).
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
    if isinstance(features, torch.Tensor):
        array = features.detach().cpu().numpy()
    else:
        array = np.asarray(features)
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
                raise ValueError(
                    f"{name}[{t}] has {len(row)} labels but the features have {n} rows"
                )
        matrix = np.stack(rows)
    if matrix.shape[0] == 0:
        raise ValueError(f"{name} is empty: no tasks")
    if matrix.shape[1] != n:
        raise ValueError(
            f"{name} has {matrix.shape[1]} labels per task but the features have {n} rows"
        )
    if not np.issubdtype(matrix.dtype, np.integer):
        raise TypeError(f"{name} must hold integer class codes, got {matrix.dtype}")
    if (matrix < -1).any():
        raise ValueError(f"{name} must be class codes >= 0, or -1 for samples outside a task")
    return matrix.astype(np.int64)


def _encode(
    train: np.ndarray, test: np.ndarray, names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map each task's training classes to 0..K_t-1; return codes and K per task."""
    train_codes = np.full_like(train, -1)
    test_codes = np.full_like(test, -1)
    num_classes = np.zeros(len(train), dtype=np.int64)
    for t, name in enumerate(names):
        classes = np.unique(train[t][train[t] >= 0])
        if classes.size < 2:
            raise ValueError(
                f"task {name!r} has {classes.size} class(es) in its training labels; "
                "a head needs at least two"
            )
        test_row = test[t][test[t] >= 0]
        if test_row.size == 0:
            raise ValueError(f"task {name!r} has no test samples")
        unseen = np.setdiff1d(test_row, classes)
        if unseen.size:
            raise ValueError(
                f"task {name!r}: test labels {unseen.tolist()} never occur in its training labels"
            )
        train_codes[t][train[t] >= 0] = np.searchsorted(classes, train[t][train[t] >= 0])
        test_codes[t][test[t] >= 0] = np.searchsorted(classes, test_row)
        num_classes[t] = classes.size
    return train_codes, test_codes, num_classes


# --------------------------------------------------------------------------- metrics


def macro_f1(
    y_true: torch.Tensor, y_pred: torch.Tensor, valid: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """Macro-averaged F1 per task for (T, n) label/prediction matrices.

    Classes count when they occur in the task's true labels or predictions, as in
    scikit-learn's ``f1_score(average="macro")``.
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
    """Accuracy, macro-F1 and mean log-likelihood per task from padded logits (n, T, K)."""
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


# --------------------------------------------------------------------------- heads


@dataclass
class _Heads:
    """T linear heads on raw features, side by side: task ``t`` owns the columns
    ``offsets[t]:offsets[t + 1]`` of ``weight`` (D, C) and ``bias`` (C,), one per class."""

    weight: torch.Tensor
    bias: torch.Tensor
    offsets: np.ndarray

    @property
    def num_classes(self) -> np.ndarray:
        return np.diff(self.offsets)


def _padded_index(widths: np.ndarray, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gather index (T, K_max) from side-by-side columns to a padded view, and its inverse.

    Padded slots point at column ``pad`` (a column of ``-inf`` logits the caller appends);
    ``inverse[c]`` is the position of real column ``c`` in the flattened (T * K_max) view.
    """
    tasks, kmax = len(widths), int(widths.max())
    starts = np.concatenate([[0], np.cumsum(widths)[:-1]])
    slot = np.arange(kmax)[None, :]
    index = np.where(slot < widths[:, None], starts[:, None] + slot, pad)
    inverse = (np.arange(tasks)[:, None] * kmax + slot)[slot < widths[:, None]]
    return torch.from_numpy(index), torch.from_numpy(inverse)


def _chunks(widths: np.ndarray, rows: int) -> list[np.ndarray]:
    """Consecutive task ranges whose padded (rows, T, K_max) views fit the budget."""
    chunks, start = [], 0
    while start < len(widths):
        stop = start + 1
        while stop < len(widths) and rows * (stop + 1 - start) * widths[start : stop + 1].max() <= (
            _PADDED_BUDGET
        ):
            stop += 1
        chunks.append(np.arange(start, stop))
        start = stop
    return chunks


def _evaluate(heads: _Heads, x: torch.Tensor, codes: torch.Tensor) -> dict[str, torch.Tensor]:
    """Accuracy, macro-F1 and log-likelihood of every head on the rows of ``x`` it labels."""
    widths = heads.num_classes
    parts: dict[str, list[torch.Tensor]] = {"accuracy": [], "macro_f1": [], "log_likelihood": []}
    for tasks in _chunks(widths, x.shape[0]):
        cols = slice(int(heads.offsets[tasks[0]]), int(heads.offsets[tasks[-1] + 1]))
        logits = x @ heads.weight[:, cols] + heads.bias[cols]
        logits = torch.cat([logits, logits.new_full((len(x), 1), -math.inf)], dim=1)
        index, _ = _padded_index(widths[tasks], logits.shape[1] - 1)
        scores = _scores(logits[:, index.to(x.device)].cpu(), codes[tasks], int(widths.max()))
        for name, value in scores.items():
            parts[name].append(value)
    return {name: torch.cat(values) for name, values in parts.items()}


def _standardisation(x: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-task mean and standard deviation (T, D) over each task's training rows (T, n mask)."""
    # float64: E[x^2] - E[x]^2 loses digits in float32 when |mean| >> std
    weight = valid.double()
    x64 = x.double()
    count = weight.sum(1, keepdim=True)
    mean = weight @ x64 / count
    var = (weight @ (x64 * x64) / count - mean**2).clamp(min=0)
    std = var.sqrt()
    std = torch.where(std > 1e-6 * (1 + mean.abs()), std, torch.ones_like(std))
    return mean.to(x.dtype), std.to(x.dtype)


def _row_space(z: torch.Tensor) -> torch.Tensor:
    """Orthonormal basis (D, r) of the row space of ``z`` (n, D)."""
    _, singular, vh = torch.linalg.svd(z, full_matrices=False)
    return vh[singular > singular[0] * 1e-6].T


def _unstandardise(
    weight: torch.Tensor, bias: torch.Tensor, mean: torch.Tensor, std: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw-feature weights of a head on standardised features (one task: weight (D, K))."""
    raw = weight / std[:, None]
    return raw, bias - mean @ raw


def _row_groups(valid: np.ndarray, widths: np.ndarray) -> list[np.ndarray]:
    """Tasks grouped so that each group's matrix product is mostly useful work.

    Tasks are taken largest first; a task joins the current group while the (row, class) pairs
    of the group's union of rows stay within ``_MAX_WASTE`` times the pairs its tasks use and the
    padded view fits the budget. Tasks on the same rows always end up together.
    """
    sizes = valid.sum(1)
    order = np.lexsort((-widths, -sizes))
    groups: list[list[int]] = []
    union = np.zeros(valid.shape[1], dtype=bool)
    used = columns = kmax = 0
    for t in order:
        new_union = union | valid[t]
        rows = int(new_union.sum())
        new_used = used + int(sizes[t]) * int(widths[t])
        new_columns = columns + int(widths[t])
        new_kmax = max(kmax, int(widths[t]))
        fits = bool(groups) and (
            rows * new_columns <= _MAX_WASTE * new_used
            and rows * (len(groups[-1]) + 1) * new_kmax <= _PADDED_BUDGET
        )
        if fits:
            groups[-1].append(int(t))
            union, used, columns, kmax = new_union, new_used, new_columns, new_kmax
        else:
            groups.append([int(t)])
            union, used, columns, kmax = (
                valid[t].copy(),
                int(sizes[t]) * int(widths[t]),
                int(widths[t]),
                int(widths[t]),
            )
    return [np.array(sorted(g)) for g in groups]


# --------------------------------------------------------------------------- logistic


def _parameter_widths(widths: np.ndarray) -> np.ndarray:
    """Weight vectors per task: one for a binary task (the binomial model), else one per class."""
    return np.where(widths == 2, 1, widths)


class _LogisticGroup:
    """Penalised logistic objectives of a group of tasks on a shared set of rows.

    Parameters are one matrix ``P`` (d + 1, C): the weight vectors of every task side by side in
    standardised coordinates, and the intercepts as the last row; a task with ``K >= 3`` classes
    owns ``K`` columns, a binary task one (the logit of its second class, the first being fixed
    at 0), so the matrix products touch only real parameters. :meth:`evaluate` returns every
    task's objective (T,) and the gradient (d + 1, C) with one matrix product and its transpose;
    :meth:`subset` gives the same objective for some of the tasks (their columns of ``P``).
    """

    def __init__(
        self,
        inputs: torch.Tensor,
        codes: torch.Tensor,
        widths: np.ndarray,
        c: float,
        mean: torch.Tensor,
        std: torch.Tensor,
        folded: bool,
    ) -> None:
        self.inputs, self.codes, self.widths, self.c = inputs, codes, widths, c
        self.mean, self.std, self.folded = mean, std, folded
        device, dtype = inputs.device, inputs.dtype
        self.tasks = len(widths)
        # parameter columns (what the solver sees) and class columns (what the softmax sees)
        parameter_widths = _parameter_widths(widths)
        self.offsets = np.concatenate([[0], np.cumsum(parameter_widths)])
        self.columns = int(self.offsets[-1])
        self.col_task = torch.from_numpy(np.repeat(np.arange(self.tasks), parameter_widths))
        self.col_task = self.col_task.to(device)
        class_offsets = np.concatenate([[0], np.cumsum(widths)])
        self.class_task = torch.from_numpy(np.repeat(np.arange(self.tasks), widths)).to(device)
        # class column of every parameter column: a binary task's parameter is its second class
        self.class_of = None
        if self.columns < int(class_offsets[-1]):
            binary = np.repeat(widths == 2, parameter_widths)
            starts = np.repeat(class_offsets[:-1], parameter_widths)
            within = np.arange(self.columns) - np.repeat(self.offsets[:-1], parameter_widths)
            self.class_of = torch.from_numpy(starts + within + binary).to(device)
        if folded:  # logits = x (W / s) + b - m (W / s): no standardised copy per task
            self.inv_std = (1.0 / std)[self.col_task].T.contiguous()  # (D, C)
            self.shift = (mean / std)[self.col_task].T.contiguous()
        valid = codes >= 0
        count = valid.sum(1).to(dtype)
        self.sample_weight = (valid.T / count).to(dtype)  # (n, T)
        self.column_weight = self.sample_weight[:, self.col_task]  # (n, C)
        # class column of each (row, task)'s label; rows outside a task point at its first one
        self.target = codes.T.clamp(min=0) + torch.from_numpy(class_offsets[:-1]).to(device)
        self.penalty = (1.0 / (c * count))[self.col_task]  # (C,)

    @classmethod
    def build(cls, x: torch.Tensor, codes: torch.Tensor, widths: np.ndarray, c: float):
        """The objective of tasks ``codes`` (T, n) on rows ``x`` (n, D), and its row basis.

        When every task uses every row, the rows are standardised once and, with fewer rows
        than dimensions, reduced to their row space; the basis (or None) is returned too.
        """
        valid = codes >= 0
        mean, std = _standardisation(x, valid)
        basis = None
        if bool(valid.all()):
            z = (x - mean[0]) / std[0]
            if z.shape[0] < z.shape[1]:
                basis = _row_space(z)
                z = z @ basis
            return cls(z, codes, widths, c, mean, std, folded=False), (basis, mean, std)
        return cls(x, codes, widths, c, mean, std, folded=True), (None, mean, std)

    def task_columns(self, tasks: torch.Tensor) -> torch.Tensor:
        """Column indices of ``tasks`` in ``P``, in task order."""
        ranges = [np.arange(self.offsets[t], self.offsets[t + 1]) for t in tasks.tolist()]
        return torch.from_numpy(np.concatenate(ranges)).to(self.inputs.device)

    def subset(self, tasks: torch.Tensor) -> _LogisticGroup:
        """The objective of ``tasks`` only (their columns of ``P``, in task order)."""
        picked = tasks.cpu().numpy()
        return _LogisticGroup(
            self.inputs,
            self.codes[tasks],
            self.widths[picked],
            self.c,
            self.mean[tasks],
            self.std[tasks],
            self.folded,
        )

    def task_dot(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Per-task inner products (T,) of two parameter matrices."""
        columns = (a * b).sum(0)
        out = torch.zeros(self.tasks, dtype=a.dtype, device=a.device)
        return out.index_add_(0, self.col_task, columns)

    def per_column(self, values: torch.Tensor) -> torch.Tensor:
        """A per-task vector (T,) broadcast to the columns of a parameter matrix."""
        return values[self.col_task][None, :]

    def task_max(self, a: torch.Tensor) -> torch.Tensor:
        """Per-task largest absolute entry (T,)."""
        out = torch.zeros(self.tasks, dtype=a.dtype, device=a.device)
        return out.scatter_reduce_(0, self.col_task, a.abs().amax(0), "amax")

    def evaluate(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weight, bias = params[:-1], params[-1]
        if self.folded:
            logits = self.inputs @ (weight * self.inv_std) + (bias - (self.shift * weight).sum(0))
        else:
            logits = self.inputs @ weight + bias
        rows = logits.shape[0]
        if self.class_of is not None:  # binary tasks: their first class's logit is 0
            logits = logits.new_zeros((rows, len(self.class_task))).index_copy_(
                1, self.class_of, logits
            )
        # log-softmax within each task's class columns (segments), no padding
        top = logits.new_full((rows, self.tasks), -math.inf)
        top.scatter_reduce_(1, self.class_task.expand(rows, -1), logits, "amax")
        shifted = logits - top[:, self.class_task]
        probs = shifted.exp()
        total = logits.new_zeros((rows, self.tasks)).index_add_(1, self.class_task, probs)
        log_total = total.log()
        picked = shifted.gather(1, self.target) - log_total  # (n, T) log p(y)
        nll = -(picked * self.sample_weight).sum(0)
        penalty = 0.5 * self.task_dot(weight * self.penalty, weight)
        residual = probs.div_(total[:, self.class_task])
        residual.scatter_add_(1, self.target, -self.sample_weight.gt(0).to(residual.dtype))
        if self.class_of is not None:
            residual = residual[:, self.class_of]
        residual *= self.column_weight
        grad_weight = self.inputs.T @ residual
        grad_bias = residual.sum(0)
        if self.folded:
            grad_weight = grad_weight * self.inv_std - self.shift * grad_bias
        grad_weight += weight * self.penalty
        return nll + penalty, torch.cat([grad_weight, grad_bias[None]], dim=0)


def _heads_of(
    params: torch.Tensor,
    widths: np.ndarray,
    basis: torch.Tensor | None,
    mean: torch.Tensor,
    std: torch.Tensor,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per-task raw-feature (weight (D, K), bias (K,)) from the solved parameter matrix; a
    binary task's fixed first class gets its zero column back."""
    weight, bias = params[:-1], params[-1]
    if basis is not None:
        weight = basis @ weight
    out, start = [], 0
    for t, k in enumerate(_parameter_widths(widths)):
        w, b = weight[:, start : start + k], bias[start : start + k]
        if widths[t] == 2:
            w, b = torch.cat([torch.zeros_like(w), w], dim=1), torch.cat([torch.zeros_like(b), b])
        out.append(_unstandardise(w, b, mean[t], std[t]))
        start += k
    return out


def _lbfgs(
    problem: _LogisticGroup, *, max_iter: int, tol: float, ftol: float, memory: int = 10
) -> tuple[torch.Tensor, torch.Tensor]:
    """One L-BFGS per task, vectorised over the tasks of ``problem``, from zero.

    Every task keeps its own curvature pairs, initial Hessian scale and backtracking (Armijo)
    step length. A task stops when the largest entry of its gradient is at most ``tol``, when no
    step decreases its objective (float32 precision) or an accepted step after the first (which is
    short by design) decreases it by at most ``ftol`` relative (``(f_k - f_{k+1}) / max(|f_k|,
    |f_{k+1}|, 1)``, SciPy's L-BFGS-B test), or after ``max_iter`` iterations. Stopped
    tasks leave the matrix products, and only the tasks still searching re-evaluate a shorter
    step. Returns the parameter matrix and each task's iterations.
    """
    device, dtype = problem.inputs.device, problem.inputs.dtype
    result = torch.zeros(problem.inputs.shape[1] + 1, problem.columns, dtype=dtype, device=device)
    iterations = torch.zeros(problem.tasks, dtype=torch.long)
    ids = torch.arange(problem.tasks, device=device)  # original task of each working task
    work = problem
    params = result.clone()
    loss, grad = work.evaluate(params)
    history: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    gamma = torch.ones(work.tasks, dtype=dtype, device=device)
    active = work.task_max(grad) > tol
    for iteration in range(max_iter):
        if active.sum() < 0.9 * work.tasks:  # a tenth have stopped: they leave the products
            done = _columns_of(work, ~active)
            result[:, problem.task_columns(ids[~active])] = params[:, done]
            if not active.any():
                break
            keep = _columns_of(work, active)
            params, grad = params[:, keep], grad[:, keep]
            history = [(s[:, keep], y[:, keep], rho[active]) for s, y, rho in history]
            loss, gamma, ids = loss[active], gamma[active], ids[active]
            work = problem.subset(ids)
            active = torch.ones(work.tasks, dtype=torch.bool, device=device)
        iterations[ids[active].cpu()] += 1
        live = work.per_column(active.to(dtype))
        # two-loop recursion, per task
        direction = grad.clone()
        alphas = []
        for s, y, rho in reversed(history):
            alpha = rho * work.task_dot(s, direction)
            direction -= work.per_column(alpha) * y
            alphas.append(alpha)
        direction *= work.per_column(gamma)
        for (s, y, rho), alpha in zip(history, reversed(alphas)):
            beta = rho * work.task_dot(y, direction)
            direction += work.per_column(alpha - beta) * s
        direction = -direction * live
        slope = work.task_dot(grad, direction)
        if (slope >= 0).any():  # lost curvature information: steepest descent for those tasks
            direction = torch.where(work.per_column(slope >= 0) > 0, -grad * live, direction)
            slope = work.task_dot(grad, direction)
        step = torch.ones(work.tasks, dtype=dtype, device=device)
        if iteration == 0:  # no curvature yet: a first step of length at most 1 in l1
            l1 = work.task_dot(grad.abs(), torch.ones_like(grad))
            step = (1.0 / l1.clamp(min=1e-12)).clamp(max=1.0)
        new_params, new_loss, new_grad = params.clone(), loss.clone(), grad.clone()
        searching = active.clone()
        trial_problem, trial_tasks = work, torch.arange(work.tasks, device=device)
        for _ in range(20):
            cols = _columns_of(work, searching) if trial_problem is not work else slice(None)
            trial = (
                params[:, cols] + trial_problem.per_column(step[trial_tasks]) * direction[:, cols]
            )
            trial_loss, trial_grad = trial_problem.evaluate(trial)
            accept = trial_loss <= loss[trial_tasks] + 1e-4 * step[trial_tasks] * slope[trial_tasks]
            accept &= searching[trial_tasks]
            done = trial_tasks[accept]
            if len(done):
                done_cols = _columns_of(work, _mask(done, work.tasks))
                sub_cols = _columns_of(trial_problem, accept)
                new_params[:, done_cols] = trial[:, sub_cols]
                new_grad[:, done_cols] = trial_grad[:, sub_cols]
                new_loss[done] = trial_loss[accept]
            searching[done] = False
            if not searching.any():
                break
            step = torch.where(searching, step * 0.5, step)
            trial_tasks = torch.nonzero(searching)[:, 0]
            trial_problem = work.subset(trial_tasks)
        s, y = new_params - params, new_grad - grad
        sy, yy = work.task_dot(s, y), work.task_dot(y, y)
        curved = sy > 1e-10
        history = (history + [(s, y, torch.where(curved, 1.0 / sy.clamp(min=1e-10), 0.0))])[
            -memory:
        ]
        gamma = torch.where(curved, sy / yy.clamp(min=1e-30), gamma)
        # an accepted step that left the loss unchanged has hit float32's resolution; the ftol
        # test skips the first step, short by design (no curvature yet)
        decreased = new_loss < loss
        if iteration > 0 and ftol > 0:
            scale = torch.maximum(torch.maximum(loss.abs(), new_loss.abs()), torch.ones_like(loss))
            decreased &= loss - new_loss > ftol * scale
        params, loss, grad = new_params, new_loss, new_grad
        active &= ~searching & decreased & (work.task_max(grad) > tol)
    else:
        result[:, problem.task_columns(ids)] = params
    return result, iterations


def _mask(tasks: torch.Tensor, total: int) -> torch.Tensor:
    mask = torch.zeros(total, dtype=torch.bool, device=tasks.device)
    mask[tasks] = True
    return mask


def _columns_of(problem: _LogisticGroup, tasks: torch.Tensor) -> torch.Tensor:
    """Column indices (in ``problem``'s parameter matrix) of the tasks where ``tasks`` is True."""
    return torch.nonzero(tasks[problem.col_task])[:, 0]


def _fit_logistic(
    x: torch.Tensor,
    codes: torch.Tensor,
    widths: np.ndarray,
    *,
    C: float,
    max_iter: int,
    tol: float,
    ftol: float,
    progress: bool,
    **_: Any,
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], np.ndarray]:
    valid = (codes >= 0).cpu().numpy()
    heads: list[Any] = [None] * len(widths)
    iterations = np.zeros(len(widths), dtype=np.int64)
    groups = _row_groups(valid, widths)
    for group in tqdm(groups, desc="logistic heads", disable=not progress, leave=False):
        rows = torch.from_numpy(np.flatnonzero(valid[group].any(0))).to(x.device)
        problem, (basis, mean, std) = _LogisticGroup.build(
            x[rows], codes[group][:, rows], widths[group], C
        )
        params, used = _lbfgs(problem, max_iter=max_iter, tol=tol, ftol=ftol)
        for t, head in zip(group, _heads_of(params, widths[group], basis, mean, std)):
            heads[t] = head
        iterations[group] = used.numpy()
    return heads, iterations


# --------------------------------------------------------------------------- SGD


def _task_stream(seed: int, name: str) -> int:
    """Seed of the named stream ``[seed, name]``: a task shuffles the same way whichever other
    tasks share its batch (never ``seed + t``, which collides with another seed's streams)."""
    word = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
    return int(np.random.SeedSequence([seed, word]).generate_state(1)[0])


def _sgd_buckets(sizes: np.ndarray, widths: np.ndarray, dim: int) -> list[np.ndarray]:
    """Tasks of similar size and class count, so that padded steps and classes waste little."""
    order = np.lexsort((widths, sizes))
    buckets: list[list[int]] = []
    for t in order:
        if buckets:
            members = buckets[-1] + [int(t)]
            n_max, n_min = sizes[members].max(), sizes[members].min()
            k_max = widths[members].max()
            cost = len(members) * n_max * k_max
            useful = int((sizes[members] * widths[members]).sum())
            if (
                n_max <= 1.25 * n_min
                and cost <= 1.5 * useful
                and len(members) * min(n_max, dim) * k_max <= _SGD_WEIGHT_BUDGET
            ):
                buckets[-1].append(int(t))
                continue
        buckets.append([int(t)])
    return [np.array(b) for b in buckets]


def _sgd_bucket(
    x: torch.Tensor,
    codes: torch.Tensor,
    widths: np.ndarray,
    names: Sequence[str],
    *,
    lr: float,
    batch_size: int,
    epochs: int,
    seed: int,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Plain SGD from zero for the tasks of one bucket, batched over tasks (T, B, d)."""
    tasks, kmax = len(widths), int(widths.max())
    device, dim = x.device, x.shape[1]
    valid = codes >= 0
    counts = valid.sum(1)
    nmax = int(counts.max())
    mean, std = _standardisation(x, valid)
    positions = torch.zeros(tasks, nmax, dtype=torch.long, device=device)
    for t in range(tasks):
        rows = torch.nonzero(valid[t])[:, 0]
        positions[t, : len(rows)] = rows
    basis = None
    if nmax < dim:
        # Each task's standardised rows in its own row space (exact: SGD from zero never leaves
        # it); zero-padded rows add no direction.
        slots = torch.arange(nmax, device=device)[None, :] < counts[:, None]
        inputs = (x[positions] - mean[:, None, :]) / std[:, None, :] * slots[..., None]
        _, _, vh = torch.linalg.svd(inputs, full_matrices=False)
        basis = vh.transpose(1, 2)  # (T, D, nmax)
        inputs = torch.bmm(inputs, basis)
    labels = torch.gather(codes, 1, positions).clamp(min=0)  # (T, nmax)
    width = dim if basis is None else inputs.shape[2]
    weight = torch.zeros(tasks, width, kmax, dtype=x.dtype, device=device)
    bias = torch.zeros(tasks, kmax, dtype=x.dtype, device=device)
    class_mask = (
        torch.arange(kmax, device=device)[None, :] < torch.from_numpy(widths).to(device)[:, None]
    )
    neg_inf = torch.where(class_mask, 0.0, -math.inf).to(x.dtype)[:, None, :]
    generators = [torch.Generator().manual_seed(_task_stream(seed, name)) for name in names]
    steps = math.ceil(nmax / batch_size)
    task_index = torch.arange(tasks, device=device)[:, None]
    slot = torch.arange(batch_size, device=device)
    for _epoch in range(epochs):
        order = torch.zeros(tasks, nmax, dtype=torch.long)
        for t in range(tasks):
            n_t = int(counts[t])
            order[t, :n_t] = torch.randperm(n_t, generator=generators[t])
        order = order.to(device)
        for step in range(steps):
            start = step * batch_size
            idx = order[:, start : start + batch_size]
            in_batch = (start + slot[: idx.shape[1]])[None, :] < counts[:, None]
            if basis is None:  # standardise the batch only (T, B, D)
                z = (x[positions[task_index, idx]] - mean[:, None, :]) / std[:, None, :]
            else:
                z = inputs[task_index, idx]  # (T, B, d)
            logits = torch.baddbmm(bias[:, None, :], z, weight) + neg_inf
            grad = logits.softmax(dim=2)
            batch_slot = torch.arange(idx.shape[1], device=device)[None, :]
            grad[task_index, batch_slot, labels[task_index, idx]] -= 1
            grad *= (in_batch / in_batch.sum(1, keepdim=True).clamp(min=1))[..., None]
            weight.baddbmm_(z.transpose(1, 2), grad, alpha=-lr)
            bias.sub_(grad.sum(1), alpha=lr)
    if basis is not None:
        weight = torch.bmm(basis, weight)
    return [
        _unstandardise(weight[t, :, :k], bias[t, :k], mean[t], std[t]) for t, k in enumerate(widths)
    ]


def _fit_sgd(
    x: torch.Tensor,
    codes: torch.Tensor,
    widths: np.ndarray,
    *,
    lr: float,
    batch_size: int,
    epochs: int,
    seed: int,
    names: Sequence[str],
    progress: bool,
    **_: Any,
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], np.ndarray]:
    sizes = (codes >= 0).sum(1).cpu().numpy()
    heads: list[Any] = [None] * len(widths)
    buckets = _sgd_buckets(sizes, widths, x.shape[1])
    for bucket in tqdm(buckets, desc="sgd heads", disable=not progress, leave=False):
        rows = torch.from_numpy(np.flatnonzero((codes[bucket] >= 0).any(0).cpu().numpy()))
        rows = rows.to(x.device)
        fitted = _sgd_bucket(
            x[rows],
            codes[bucket][:, rows],
            widths[bucket],
            [names[t] for t in bucket],
            lr=lr,
            batch_size=batch_size,
            epochs=epochs,
            seed=seed,
        )
        for t, head in zip(bucket, fitted):
            heads[t] = head
    steps = epochs * np.ceil(sizes / batch_size).astype(np.int64)
    return heads, steps


# --------------------------------------------------------------------------- SVM


def _inverse_temperature(decision: np.ndarray, labels: np.ndarray) -> float:
    """Scale ``s`` minimising the training NLL of ``softmax(s * decision)``.

    Searched on a log scale in [e^-10, e^10]; the bound keeps separable data (optimum at
    ``s -> inf``) finite.
    """
    from scipy.optimize import minimize_scalar
    from scipy.special import logsumexp

    picked = decision[np.arange(len(labels)), labels]

    def nll(log_scale: float) -> float:
        scale = math.exp(log_scale)
        return float((logsumexp(scale * decision, axis=1) - scale * picked).mean())

    return math.exp(minimize_scalar(nll, bounds=(-10.0, 10.0), method="bounded").x)


def _fit_svm(
    x: torch.Tensor,
    codes: torch.Tensor,
    widths: np.ndarray,
    *,
    C: float,
    max_iter: int,
    tol: float,
    progress: bool,
    **_: Any,
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], np.ndarray]:
    from sklearn.svm import LinearSVC

    valid = codes >= 0
    mean, std = _standardisation(x, valid)
    heads = []
    for t in tqdm(range(len(widths)), desc="svm heads", disable=not progress, leave=False):
        rows = valid[t]
        z = ((x[rows] - mean[t]) / std[t]).double().cpu().numpy()
        y = codes[t][rows].cpu().numpy()
        svm = LinearSVC(C=C, max_iter=max_iter, tol=tol, dual="auto").fit(z, y)
        coef, intercept = svm.coef_.T, svm.intercept_
        if coef.shape[1] == 1:  # binary: decision d -> logits (0, d)
            coef = np.hstack([np.zeros_like(coef), coef])
            intercept = np.array([0.0, intercept[0]])
        scale = _inverse_temperature(z @ coef + intercept, y)
        weight = torch.from_numpy(coef * scale).to(x.device, x.dtype)
        bias = torch.from_numpy(intercept * scale).to(x.device, x.dtype)
        heads.append(_unstandardise(weight, bias, mean[t], std[t]))
    return heads, np.zeros(len(widths), dtype=np.int64)


_Solver = Callable[..., tuple[list[tuple[torch.Tensor, torch.Tensor]], np.ndarray]]
_SOLVERS: dict[str, _Solver] = {"logistic": _fit_logistic, "sgd": _fit_sgd, "linear_svm": _fit_svm}
_DEFAULTS = {
    "logistic": {"C": 1.0, "max_iter": 100, "tol": 1e-4, "ftol": 0.0},
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
    """Train one head per task on shared frozen features.

    Parameters
    ----------
    train_features : array (n, D)
        Frozen features of the training images (shared by all tasks).
    train_label_sets : int array (T, n) or sequence of T int arrays of length n
        Class codes per task; ``-1`` marks a sample that is not in that task (tasks on different
        subsets of the images).
    test_features : array (m, D)
    test_label_sets : int array (T, m) or sequence of T arrays of length m
    method : {"logistic", "sgd", "linear_svm"}
        See the module docstring. ``"linear_svm"`` runs scikit-learn per task.
    task_names : sequence of str, optional
        Names for the ``task`` column (default ``"0"``, ``"1"``, ...).
    device : str or torch.device
        Where the batched solvers run (``"auto"``: a GPU when there is one).
    progress : bool
    **kwargs
        Method options: logistic ``C=1.0, max_iter=100, tol=1e-4, ftol=0.0``; sgd ``lr=0.01,
        batch_size=10, epochs=100, seed=0`` (each task shuffles with the named stream
        ``[seed, task name]``, so its head does not depend on the other tasks); linear_svm
        ``C=1.0, max_iter=10000, tol=1e-4``.

    Returns
    -------
    pandas.DataFrame
        One row per task with the fields of :class:`HeadResult`, ``task`` and ``iterations``
        (L-BFGS iterations for ``"logistic"``, SGD steps for ``"sgd"``, 0 for the SVM).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1, 2], 40)
    >>> x = rng.normal(size=(120, 6)) + 2 * np.eye(3, 6)[y]
    >>> table = retrain_heads(x, [y, y % 2], x, [y, y % 2], task_names=["three", "parity"])
    >>> table[["task", "num_classes"]].to_dict("list")
    {'task': ['three', 'parity'], 'num_classes': [3, 2]}
    """
    if method not in _SOLVERS:
        raise ValueError(f"unknown head method {method!r}; choose from {HEAD_METHODS}")
    unknown = set(kwargs) - set(_DEFAULTS[method])
    if unknown:
        raise TypeError(
            f"unexpected option(s) {sorted(unknown)} for method {method!r}; "
            f"valid: {sorted(_DEFAULTS[method])}"
        )
    options = {**_DEFAULTS[method], **kwargs}
    if method == "logistic":
        options["ftol"] = check_real(options["ftol"], "ftol", minimum=0.0)
    x_train = _check_features(train_features, "train_features")
    x_test = _check_features(test_features, "test_features")
    if x_train.shape[1] != x_test.shape[1]:
        raise ValueError(
            f"train_features have {x_train.shape[1]} columns, test_features {x_test.shape[1]}"
        )
    train_sets = _check_label_sets(train_label_sets, x_train.shape[0], "train_label_sets")
    test_sets = _check_label_sets(test_label_sets, x_test.shape[0], "test_label_sets")
    if len(train_sets) != len(test_sets):
        raise ValueError(
            f"{len(train_sets)} training label sets but {len(test_sets)} test label sets"
        )
    if task_names is None:
        names = [str(t) for t in range(len(train_sets))]
    else:
        names = [str(n) for n in task_names]
    if len(names) != len(train_sets):
        raise ValueError(f"{len(names)} task_names for {len(train_sets)} tasks")
    train_codes, test_codes, num_classes = _encode(train_sets, test_sets, names)

    dev = resolve_device(device)
    x_train, x_test = x_train.to(dev), x_test.to(dev)
    train_codes_t = torch.from_numpy(train_codes).to(dev)
    fitted, iterations = _SOLVERS[method](
        x_train, train_codes_t, num_classes, names=names, progress=progress, **options
    )
    heads = _Heads(
        weight=torch.cat([w for w, _ in fitted], dim=1),
        bias=torch.cat([b for _, b in fitted]),
        offsets=np.concatenate([[0], np.cumsum(num_classes)]),
    )
    with torch.no_grad():
        train_scores = _evaluate(heads, x_train, train_codes_t.cpu())
        test_scores = _evaluate(heads, x_test, torch.from_numpy(test_codes))
    return pd.DataFrame(
        {
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
            "iterations": iterations,
        }
    )


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
    table = retrain_heads(
        train_features, [train_labels], test_features, [test_labels], method, **kwargs
    )
    row = table.iloc[0]
    counts = ("num_classes", "n_train", "n_test")
    return HeadResult(
        **{
            name: row[name]
            if name == "method"
            else int(row[name])
            if name in counts
            else float(row[name])
            for name in HeadResult.__dataclass_fields__
        }
    )
