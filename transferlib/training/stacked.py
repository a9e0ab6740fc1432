"""Training many networks of one architecture on many tasks at once ("stacked" networks).

Transfer experiments fine-tune one source network on dozens of target tasks, and train a
reference network from scratch for each. On a CPU, small networks trained one after the other
waste the cores: their matrix products are too small. :func:`train_stacked` trains ``T`` copies
(one per task, each with its own weights, batches and head) as **one** network on grouped
channels. A step takes ``B`` samples of every task, laid out as ``(B, T * C, H, W)``; every
convolution becomes a grouped convolution with ``T`` times the groups, every batch
normalisation one over ``T`` times the channels (each task keeps its own statistics), and the
heads one batched matrix product. This is exact: the ``t``-th group computes what network ``t``
computes on its own batch, batch statistics included, so a stack of ``T`` tasks gives the
results of ``T`` separate runs (up to floating-point summation order, and except that
dropout draws its random masks differently).

Training can start at any unit of the network (:meth:`~transferlib.models.TransferModel.
units_after`): with ``cut`` set, the inputs are the activation maps after that unit, computed
once by the frozen (eval-mode) lower part, and only the later units and the head are trained.
This is exact for fine-tuning with the lower part frozen in eval mode and no data augmentation:
the lower part then maps each image to the same activation on every epoch.

Protocol: plain or momentum SGD on the mean cross-entropy of each task's batch, constant learning
rate, each epoch a fresh permutation of the task's training samples cut into batches of
``batch_size`` (the last, incomplete batch is dropped, so every step sees a full batch). Tasks
with fewer batches than others in the stack idle (no update, batch-norm statistics restored)
for the remaining steps of an epoch. With ``class_balanced``, each sample's cross-entropy is
weighted by ``n / (K n_k)`` (``n_k`` training samples of its class ``k``, ``K`` classes), so the
loss estimates the mean over classes of each class's cross-entropy rather than the mean over
samples: a rare class counts as much as a frequent one.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from transferlib._progress import tqdm
from transferlib.models import TransferModel
from transferlib.training.device import resolve_device
from transferlib.training.heads import macro_f1

__all__ = ["StackedTask", "train_stacked"]

# Tolerance of the check that a stacked network computes what its members compute.
_CHECK_TOLERANCE = 1e-3


@dataclass(frozen=True)
class StackedTask:
    """One task of a stack: rows of a shared input pool and their class codes ``0..K-1``.

    Attributes
    ----------
    train_rows, test_rows : numpy.ndarray
        Indices into the ``inputs`` pool of :func:`train_stacked`.
    train_labels, test_labels : numpy.ndarray
        Class codes of those rows.
    num_classes : int
        Width of the task's head.
    seed : int
        Seed of the task's batch order.
    """

    train_rows: np.ndarray
    train_labels: np.ndarray
    test_rows: np.ndarray
    test_labels: np.ndarray
    num_classes: int
    seed: int

    def __post_init__(self) -> None:
        for name in ("train", "test"):
            rows, labels = getattr(self, f"{name}_rows"), getattr(self, f"{name}_labels")
            if len(rows) != len(labels) or len(rows) == 0:
                raise ValueError(
                    f"{name}_rows and {name}_labels must be non-empty and of equal length, "
                    f"got {len(rows)} and {len(labels)}"
                )
            if np.min(labels) < 0 or np.max(labels) >= self.num_classes:
                raise ValueError(f"{name}_labels must be codes in [0, {self.num_classes})")


def _leaves(units: Sequence[nn.Module]) -> list[nn.Module]:
    """Every module of the units once, in a fixed order (shared modules appear once)."""
    seen: set[int] = set()
    out = []
    for unit in units:
        for module in unit.modules():
            if id(module) not in seen:
                seen.add(id(module))
                out.append(module)
    return out


class _PointwiseStack(nn.Conv2d):
    """A stacked 1x1 convolution as one batched matrix product (faster than a grouped
    convolution with many groups on a CPU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        tasks = self.groups
        pixels = x.permute(0, 2, 3, 1).reshape(-1, tasks, self.in_channels // tasks)
        weight = self.weight.view(tasks, self.out_channels // tasks, -1)
        out = torch.bmm(pixels.transpose(0, 1), weight.transpose(1, 2)).transpose(0, 1)
        if self.bias is not None:
            out = out + self.bias.view(tasks, -1)
        return out.reshape(batch, height, width, -1).permute(0, 3, 1, 2)


def _pointwise(conv: nn.Conv2d) -> bool:
    # EfficientNet's "same padding" convolutions pad with a module of their own; for a 1x1
    # kernel it is an identity (the package's own Identity class). The stack is checked
    # numerically after it is built, so a wrong guess here cannot go unnoticed.
    padding = getattr(conv, "static_padding", None)
    return (
        conv.kernel_size == (1, 1)
        and conv.stride == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding in ((0, 0), "valid")
        and (padding is None or type(padding).__name__ == "Identity")
    )


def _stack_leaf(target: nn.Module, members: Sequence[nn.Module]) -> None:
    """Turn ``target`` (a copy of ``members[0]``) into the grouped module of all members."""
    tasks = len(members)

    def cat(name: str) -> torch.Tensor | None:
        values = [getattr(m, name) for m in members]
        return None if values[0] is None else torch.cat([v.detach() for v in values])

    if isinstance(target, nn.Conv2d):
        if target.padding_mode != "zeros":
            raise TypeError(f"cannot stack {type(target).__name__} with padding_mode != 'zeros'")
        if _pointwise(target):
            target.__class__ = _PointwiseStack
        target.weight = nn.Parameter(cat("weight"))
        target.bias = None if target.bias is None else nn.Parameter(cat("bias"))
        target.in_channels *= tasks
        target.out_channels *= tasks
        target.groups *= tasks
    elif isinstance(target, nn.BatchNorm2d):
        if target.training and target.track_running_stats and target.momentum is None:
            raise TypeError("cannot stack BatchNorm2d with momentum=None (cumulative averages)")
        for name in ("weight", "bias"):
            if getattr(target, name) is not None:
                setattr(target, name, nn.Parameter(cat(name)))
        for name in ("running_mean", "running_var"):
            if getattr(target, name) is not None:
                setattr(target, name, cat(name))
        target.num_features *= tasks
    elif target._parameters and any(p is not None for p in target._parameters.values()):
        raise TypeError(
            f"cannot stack a {type(target).__name__}: only Conv2d and BatchNorm2d layers (and "
            "parameter-free layers) are supported inside the trained units"
        )


class _Stack(nn.Module):
    """``T`` networks from ``cut`` on: grouped units, then pooling, dropout and padded heads."""

    def __init__(
        self, models: Sequence[TransferModel], heads: Sequence[nn.Linear], cut: str | None
    ) -> None:
        super().__init__()
        self.tasks = len(models)
        per_model = [[unit for _, unit in m.units_after(cut)] for m in models]
        units = copy.deepcopy(per_model[0])
        for target, *members in zip(_leaves(units), *[_leaves(u) for u in per_model]):
            _stack_leaf(target, members)
        self.units = nn.ModuleList(units)
        self.dropout = copy.deepcopy(models[0].dropout)
        widths = [head.out_features for head in heads]
        dim, kmax = models[0].feature_dim, max(widths)
        weight = torch.zeros(self.tasks, kmax, dim)
        bias = torch.zeros(self.tasks, kmax)
        for t, head in enumerate(heads):
            weight[t, : widths[t]] = head.weight.detach()
            bias[t, : widths[t]] = head.bias.detach()
        self.head_weight, self.head_bias = nn.Parameter(weight), nn.Parameter(bias)
        mask = torch.arange(kmax)[None, :] < torch.tensor(widths)[:, None]
        self.register_buffer("class_mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, K_max) of grouped inputs (B, T * C, H, W); absent classes get -inf."""
        for unit in self.units:
            x = unit(x)
        features = self.dropout(x.mean(dim=(2, 3)))
        features = features.view(features.shape[0], self.tasks, -1)
        logits = torch.einsum("btd,tkd->btk", features, self.head_weight) + self.head_bias
        return logits.masked_fill(~self.class_mask, -torch.inf)


def _grouped(batch: torch.Tensor, tasks: int) -> torch.Tensor:
    """(T * B, C, H, W) task-major samples -> (B, T * C, H, W) grouped channels."""
    _, channels, height, width = batch.shape
    grouped = batch.view(tasks, -1, channels, height, width).transpose(0, 1)
    return grouped.reshape(-1, tasks * channels, height, width)


def _check_stack(
    stack: _Stack,
    models: Sequence[TransferModel],
    heads: Sequence[nn.Linear],
    cut: str | None,
    sample: torch.Tensor,
) -> None:
    """Raise if the stacked network does not compute what its members compute (eval mode).

    Compared on float64 copies on the CPU, wherever the networks live: exact up to rounding
    there, while a GPU's TF32 convolutions differ by more than the tolerance, and members and
    new heads may sit on different devices (a source on the GPU, heads made on the CPU)."""
    problem = (
        f"{type(models[0]).__name__} cannot be trained stacked from cut {cut!r}: a layer after "
        "the cut mixes channels across tasks (e.g. a zero-padding shortcut); choose a later cut "
        "or train the tasks one at a time (stacks of one)"
    )

    def exact(module: nn.Module) -> nn.Module:
        return copy.deepcopy(module).to("cpu", torch.float64).eval()

    sample = sample.to("cpu", torch.float64)
    with torch.no_grad():
        try:
            got = exact(stack)(_grouped(sample.repeat(len(models), 1, 1, 1), len(models)))
        except RuntimeError as error:
            raise ValueError(problem) from error
        members: dict[int, nn.Module] = {}  # one copy of a source shared by many tasks
        for t, (model, head) in enumerate(zip(models, heads)):
            if id(model) not in members:
                members[id(model)] = exact(model)
            expected = exact(head)(members[id(model)].features_from(cut, sample))
            k = expected.shape[1]
            if not torch.allclose(
                got[:, t, :k], expected, atol=_CHECK_TOLERANCE, rtol=_CHECK_TOLERANCE
            ):
                raise ValueError(problem)


def _buffers_of(stack: _Stack) -> list[torch.Tensor]:
    return [
        b for name, b in stack.named_buffers() if name.endswith(("running_mean", "running_var"))
    ]


def _task_mask(tensor: torch.Tensor, tasks: int, which: torch.Tensor) -> torch.Tensor:
    """``which`` (T,) broadcast over a stacked tensor whose first axis is task-major."""
    per_task = tensor.shape[0] // tasks
    return which.repeat_interleave(per_task).view(-1, *([1] * (tensor.dim() - 1)))


def train_stacked(
    models: Sequence[TransferModel],
    inputs: torch.Tensor,
    tasks: Sequence[StackedTask],
    *,
    cut: str | None,
    epochs: int,
    lr: float,
    batch_size: int,
    heads: Sequence[nn.Linear] | None = None,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    class_balanced: bool = False,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    device: str | torch.device = "auto",
    eval_batch_size: int = 256,
    progress: bool = False,
    desc: str = "stacked",
) -> list[pd.DataFrame]:
    """Train ``models[t]`` on ``tasks[t]`` for every ``t`` at once, from ``cut`` on.

    Parameters
    ----------
    models : sequence of TransferModel
        One network per task, all of one architecture, each with its head of
        ``tasks[t].num_classes`` outputs already in place (initialise it as you would for a
        single run). The networks themselves are not modified; the same network may appear
        several times (e.g. one source fine-tuned on many tasks) when ``heads`` is given.
    inputs : torch.Tensor
        The pool every task's rows index: images (uint8, with ``transform`` turning a batch into
        network input) or activation maps after ``cut`` (float).
    tasks : sequence of StackedTask
    cut : str or None
        Train the units after this cut point (and the head); ``None`` trains every layer.
    epochs, lr, batch_size, momentum, weight_decay
        SGD (coupled weight decay), constant learning rate; see the module docstring.
    class_balanced : bool
        Weight each sample's cross-entropy by ``n / (K n_k)`` of its class in its task (the
        class-balanced loss of the module docstring); the reported ``train_loss`` is that loss.
    heads : sequence of nn.Linear, optional
        The tasks' new heads (``feature_dim -> num_classes``), used instead of the models' own.
    transform : callable, optional
        Applied to every gathered batch (T * B, ...) before the network, e.g.
        ``lambda b: preprocess(model, b)`` for images.
    device : str or torch.device
    eval_batch_size : int
        Test samples per task and forward pass.
    progress : bool
    desc : str

    Returns
    -------
    list of DataFrame
        Per task, one row per epoch: ``epoch, train_loss, train_accuracy`` (train-mode batches
        of that epoch), ``test_accuracy, test_macro_f1`` (eval mode, after the epoch),
        ``seconds`` (cumulative wall time of the whole stack).

    Raises
    ------
    ValueError
        If the lists differ in length, a task has fewer training samples than ``batch_size``,
        a head does not match its task, or the architecture cannot be stacked from ``cut``.
    """
    if len(models) != len(tasks) or not tasks:
        raise ValueError(f"need one model per task, got {len(models)} models, {len(tasks)} tasks")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    heads = [m.head for m in models] if heads is None else list(heads)
    if len(heads) != len(tasks):
        raise ValueError(f"need one head per task, got {len(heads)} heads, {len(tasks)} tasks")
    for t, (head, task) in enumerate(zip(heads, tasks)):
        if head.out_features != task.num_classes:
            raise ValueError(
                f"head {t} has {head.out_features} outputs, task {t} has {task.num_classes} classes"
            )
        if len(task.train_rows) < batch_size:
            raise ValueError(
                f"task {t} has {len(task.train_rows)} training samples, fewer than "
                f"batch_size={batch_size}"
            )
    dev = resolve_device(device)
    n_tasks = len(tasks)
    prepare = transform if transform is not None else (lambda batch: batch)
    sample = prepare(inputs[torch.as_tensor(tasks[0].train_rows[:2])])
    stack = _Stack(models, heads, cut)
    _check_stack(stack, models, heads, cut, sample)
    stack.to(dev)
    channels_last = dev.type != "mps" and sample.dim() == 4
    if channels_last:
        stack.to(memory_format=torch.channels_last)
    params = [p for p in stack.parameters() if p.requires_grad]
    velocity = [torch.zeros_like(p) for p in params] if momentum else None
    buffers = _buffers_of(stack)

    def rows_tensor(name: str) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [torch.as_tensor(getattr(t, f"{name}_rows"), dtype=torch.long) for t in tasks]
        labels = [torch.as_tensor(getattr(t, f"{name}_labels"), dtype=torch.long) for t in tasks]
        width = max(len(r) for r in rows)
        pad = [torch.cat([r, r[:1].expand(width - len(r))]) for r in rows]
        lab = [torch.cat([y, y[:1].expand(width - len(y))]) for y in labels]
        return torch.stack(pad), torch.stack(lab)

    train_rows, train_labels = rows_tensor("train")
    test_rows, test_labels = rows_tensor("test")
    counts = torch.tensor([len(t.train_rows) for t in tasks])
    kmax = max(t.num_classes for t in tasks)
    class_weight = torch.ones(n_tasks, kmax)
    if class_balanced:
        for t, task in enumerate(tasks):
            per_class = np.bincount(task.train_labels, minlength=task.num_classes)
            class_weight[t, : task.num_classes] = torch.as_tensor(
                len(task.train_labels) / (task.num_classes * np.maximum(per_class, 1)),
                dtype=torch.float32,
            )
    class_weight = class_weight.to(dev)
    test_counts = torch.tensor([len(t.test_rows) for t in tasks])
    batches = counts // batch_size
    steps = int(batches.max())
    generators = [torch.Generator().manual_seed(int(t.seed)) for t in tasks]
    task_index = torch.arange(n_tasks)[:, None]
    histories: list[list[dict[str, Any]]] = [[] for _ in tasks]
    start_time = time.perf_counter()

    def forward(rows: torch.Tensor) -> torch.Tensor:
        batch = prepare(inputs[rows.reshape(-1)].to(dev))
        grouped = _grouped(batch, n_tasks)
        if channels_last:
            grouped = grouped.contiguous(memory_format=torch.channels_last)
        return stack(grouped)

    for epoch in tqdm(range(1, epochs + 1), desc=desc, disable=not progress, leave=False):
        stack.train()
        order = torch.stack(
            [
                torch.cat(
                    [
                        torch.randperm(int(n), generator=g),
                        torch.zeros(int(counts.max() - n), dtype=torch.long),
                    ]
                )
                for n, g in zip(counts, generators)
            ]
        )
        loss_sum = torch.zeros(n_tasks)
        correct = torch.zeros(n_tasks)
        seen = torch.zeros(n_tasks)
        for step in range(steps):
            active = step < batches  # (T,)
            positions = order[:, step * batch_size : (step + 1) * batch_size]
            positions = torch.where(active[:, None], positions, order[:, :batch_size])
            rows = train_rows[task_index, positions]
            labels = train_labels[task_index, positions].to(dev)
            idle = ~active
            saved = [b.detach().clone() for b in buffers] if idle.any() else None
            logits = forward(rows)  # (B, T, K)
            log_probs = logits.log_softmax(dim=2)
            picked = log_probs.gather(2, labels.T[..., None])[..., 0]  # (B, T)
            if class_balanced:
                picked = picked * class_weight.gather(1, labels).T
            per_task = -picked.mean(0)
            weight = active.to(dev, per_task.dtype)
            grads = torch.autograd.grad((per_task * weight).sum(), params)
            with torch.no_grad():
                everyone = bool(active.all())
                live = active.to(dev)
                for i, (p, g) in enumerate(zip(params, grads)):
                    update = g.add(p, alpha=weight_decay) if weight_decay else g
                    if velocity is not None:
                        if everyone:
                            velocity[i].mul_(momentum).add_(update)
                        else:
                            mask = _task_mask(p, n_tasks, live).to(p.dtype)
                            velocity[i].mul_(1 - mask * (1 - momentum)).add_(update * mask)
                        update = velocity[i]
                    if everyone:
                        p.sub_(update, alpha=lr)
                    else:
                        p.sub_(update * _task_mask(p, n_tasks, live).to(p.dtype), alpha=lr)
                if saved is not None:
                    for b, old in zip(buffers, saved):
                        keep = _task_mask(b, n_tasks, idle.to(dev))
                        b.copy_(torch.where(keep, old, b))
            loss_sum += (per_task.detach().cpu() * active) * batch_size
            correct += (logits.detach().argmax(2) == labels.T).sum(0).cpu() * active
            seen += active * batch_size
        stack.eval()
        predictions = []
        with torch.no_grad():
            for start in range(0, test_rows.shape[1], eval_batch_size):
                predictions.append(
                    forward(test_rows[:, start : start + eval_batch_size]).argmax(2).T.cpu()
                )
        predicted = torch.cat(predictions, dim=1)  # (T, m_max)
        valid = torch.arange(predicted.shape[1])[None, :] < test_counts[:, None]
        accuracy = ((predicted == test_labels) & valid).sum(1) / test_counts
        f1 = macro_f1(test_labels, predicted, valid, kmax)
        seconds = time.perf_counter() - start_time
        for t in range(n_tasks):
            histories[t].append(
                {
                    "epoch": epoch,
                    "train_loss": float(loss_sum[t] / seen[t]),
                    "train_accuracy": float(correct[t] / seen[t]),
                    "test_accuracy": float(accuracy[t]),
                    "test_macro_f1": float(f1[t]),
                    "seconds": seconds,
                }
            )
    return [pd.DataFrame(rows) for rows in histories]
