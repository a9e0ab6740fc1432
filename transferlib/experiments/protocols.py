"""Transfer protocols shared by every chapter: re-trained heads, fine-tuning, references.

* :func:`head_transfer` -- freeze a source network, train a new linear head per target task on its
  features (``"linear_svm"`` as Tran et al., ``"sgd"`` as Nguyen et al., ``"logistic"`` to
  convergence), many tasks in one batched solve;
* :func:`fine_tune_network` -- copy a source network, put a new head on it and train every layer on
  the target, with per-epoch train and test history;
* :func:`reference_network` -- the same architecture trained from random initialisation on the
  target alone (LEEP §5.5, P2L's "no transfer").

Every protocol reports the majority-class baseline of its task beside its accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from transferlib.config import RunParams
from transferlib.data import ImageDataset, TaskSpec, make_task_data
from transferlib.experiments.presets import TrainingSpec, stream_seed
from transferlib.experiments.sources import Network, majority_accuracy, train_network

__all__ = ["fine_tune_network", "head_transfer", "reference_network", "stacked_task", "task_codes"]


def task_codes(dataset: ImageDataset, spec: TaskSpec, rows: np.ndarray, split: str) -> np.ndarray:
    """Class codes ``0..K-1`` of ``spec`` on dataset ``rows``; -1 where a row is not in the task.

    ``split`` is ``"train"`` or ``"test"`` (which of the spec's index sets counts).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    members = spec.train_indices if split == "train" else spec.test_indices
    column = dataset.column(spec.target)
    lookup = np.full(int(column.max()) + 1, -1, dtype=np.int64)
    lookup[np.asarray(spec.classes, dtype=np.int64)] = np.arange(spec.num_classes)
    codes = lookup[column[rows]]
    codes[~np.isin(rows, members)] = -1
    return codes


def stacked_task(dataset: ImageDataset, spec: TaskSpec, seed: int) -> Any:
    """``spec`` as a :class:`~transferlib.training.stacked.StackedTask` (its rows and class codes
    in both splits), trained with batch order ``seed``."""
    from transferlib.training.stacked import StackedTask

    return StackedTask(
        train_rows=spec.train_indices,
        train_labels=task_codes(dataset, spec, spec.train_indices, "train"),
        test_rows=spec.test_indices,
        test_labels=task_codes(dataset, spec, spec.test_indices, "test"),
        num_classes=spec.num_classes,
        seed=seed,
    )


def head_transfer(
    run: RunParams,
    dataset: ImageDataset,
    specs: Sequence[TaskSpec],
    train_features: np.ndarray,
    train_rows: np.ndarray,
    test_features: np.ndarray,
    test_rows: np.ndarray,
    method: str,
    **options: Any,
) -> pd.DataFrame:
    """Train one head per task on frozen features and evaluate it.

    Parameters
    ----------
    run : RunParams
        Its device runs the batched solvers.
    dataset : ImageDataset
    specs : sequence of TaskSpec
        Target tasks; each may use any subset of ``train_rows`` / ``test_rows``.
    train_features, test_features : numpy.ndarray
        Features of the dataset rows ``train_rows`` / ``test_rows`` (one row each).
    method : {"linear_svm", "logistic", "sgd"}
    **options
        Solver options (see :func:`transferlib.training.retrain_heads`).

    Returns
    -------
    DataFrame
        One row per task (indexed like ``specs``): ``task, accuracy, macro_f1,
        test_log_likelihood, train_log_likelihood, train_accuracy, num_classes, n_train, n_test,
        majority_accuracy``.
    """
    from transferlib.training import retrain_heads

    train_codes = np.stack([task_codes(dataset, s, train_rows, "train") for s in specs])
    test_codes = np.stack([task_codes(dataset, s, test_rows, "test") for s in specs])
    table = retrain_heads(
        train_features,
        train_codes,
        test_features,
        test_codes,
        method,
        task_names=[s.name for s in specs],
        device=run.device,
        **options,
    )
    table["majority_accuracy"] = [
        majority_accuracy(tr[tr >= 0], te[te >= 0]) for tr, te in zip(train_codes, test_codes)
    ]
    return table.drop(columns="method")


def fine_tune_network(
    run: RunParams,
    dataset: ImageDataset,
    source: Network,
    spec: TaskSpec,
    training: TrainingSpec,
    *,
    progress: bool = True,
) -> Network:
    """Fine-tune ``source`` on ``spec`` (new head, every layer trained), or load it from the cache.

    The backbone trains at ``training.lr * training.backbone_lr_multiplier``, the head at
    ``training.lr``; the history has the train and test accuracy of every epoch.
    """
    from transferlib.training import fine_tune_cached

    train_data, test_data = make_task_data(dataset, spec)
    result = fine_tune_cached(
        (source.key, source.model),
        train_data,
        test_data,
        epochs=training.epochs,
        lr=training.lr,
        backbone_lr_multiplier=training.backbone_lr_multiplier,
        batch_size=training.batch_size,
        seed=stream_seed(run.seed, "fine-tune", source.name, spec.name),
        device=run.device,
        cache_dir=run.cache_dir,
        progress=progress,
        desc=f"fine-tune {source.name} -> {spec.name}",
        momentum=training.momentum,
        weight_decay=training.weight_decay,
        nesterov=training.nesterov,
        warmup_epochs=training.warmup_epochs,
        eval_every=training.eval_every,
        augment=training.augment,
    )
    return Network(
        name=f"{source.name} -> {spec.name}",
        role="fine-tuned",
        architecture=source.architecture,
        key=str(result.key),
        model=result.model,
        history=result.history,
        from_cache=result.from_cache,
        majority_accuracy=majority_accuracy(train_data.labels, test_data.labels),
        n_train=len(train_data),
        n_test=len(test_data),
    )


def reference_network(
    run: RunParams,
    dataset: ImageDataset,
    spec: TaskSpec,
    training: TrainingSpec,
    *,
    progress: bool = True,
) -> Network:
    """``training.model`` trained from random initialisation on ``spec`` alone (no transfer)."""
    return train_network(run, dataset, spec, training, role="reference", progress=progress)
