"""Experiments of Tran, Nguyen & Hassner (ICCV 2019): transferability and hardness from labels.

The paper estimates how well a representation trained for a source task ``Z`` transfers to a
target task ``Y`` on the same images by the conditional entropy ``H(Y|Z)`` of the two training
label sequences, and how hard a task is by ``H(Z|C) = H(Z)`` (transfer from a constant task).
The runners reproduce its Section 5 on the shared experiment layer:

* :func:`run_theorem_check` -- Theorem 1: transferred training log-likelihood versus the bound
  ``l_Z - H(Y|Z)``;
* :func:`run_attribute_transfer` -- §5.1 / Fig. 2: attribute-to-attribute transfer, CE versus
  the test error of a linear SVM on frozen source features;
* :func:`run_identity_transfer` -- §5.2 / Table 1 / Figs. 3-4: transfer from the identity label;
* :func:`run_training_size_curve` -- Fig. 5: dedicated versus transferred accuracy by training size;
* :func:`run_dedicated` / :func:`run_hardness` -- §5.3 / Fig. 6: ``H(Z|C)`` versus the error of a
  dedicated network.

The network trained for attribute ``a`` is both a §5.1 source and the dedicated network of ``a``
(:func:`~transferlib.experiments.sources.train_network` keys it by its task, not its role).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from transferlib.config import RunParams, register_presets
from transferlib.data import ImageDataset, TaskSpec, attribute_tasks, identity_task
from transferlib.evaluation import linear_fit_with_ci
from transferlib.experiments.presets import (
    GLYPHS,
    DataSpec,
    Preset,
    TrainingSpec,
    rng,
    scaled,
)
from transferlib.experiments.protocols import head_transfer, task_codes
from transferlib.experiments.sources import (
    Network,
    majority_accuracy,
    network_outputs,
    run_dataset,
    train_network,
)
from transferlib.experiments.sweep import result_store, run_sweep
from transferlib.scores import conditional_entropy, hardness

__all__ = [
    "PRESETS",
    "NCEPreset",
    "correlation_summary",
    "identity_table",
    "log_likelihood",
    "mixture_log_likelihood",
    "nce_dataset",
    "nce_tasks",
    "run_attribute_transfer",
    "run_dedicated",
    "run_hardness",
    "run_identity_transfer",
    "run_theorem_check",
    "run_training_size_curve",
    "select_attributes",
    "visual_difficulty",
]

_MODULE = __name__
# Slack for the floating-point comparison of two mean log-likelihoods.
_BOUND_TOLERANCE = 1e-9


@dataclass(frozen=True)
class NCEPreset(Preset):
    """Settings of the chapter "Transferability and hardness (Tran et al. 2019)".

    One preset serves every page of the chapter, so a network trained for one figure is reused
    from the cache by the others.

    Attributes
    ----------
    data : DataSpec
        The images (the book's shared Glyphs set of the scale).
    n_train, n_test : int or None
        Images drawn from the train and test splits (None: the whole split).
    training : TrainingSpec
        Every per-attribute network (source and dedicated).
    identity_training : TrainingSpec
        The identity (recognition) network, which has many more classes.
    n_attributes, n_sources : int or None
        Attributes used (targets, dedicated networks) and §5.1 source attributes (None: all).
    n_theorem_sources : int
        Source attributes of the Theorem-1 check.
    train_sizes : tuple of int
        Training-set sizes of the accuracy-versus-size curves (Fig. 5).
    head_method : str
        Head of the transfer experiments (``"linear_svm"``, as in the paper).
    theorem_head_c : float
        Inverse L2 penalty of the Theorem-1 logistic heads (scikit-learn's ``C``), fitted to
        convergence one target at a time.
    """

    data: DataSpec
    n_train: int | None
    n_test: int | None
    training: TrainingSpec
    identity_training: TrainingSpec
    n_attributes: int | None
    n_sources: int | None
    n_theorem_sources: int
    train_sizes: tuple[int, ...]
    head_method: str = "linear_svm"
    theorem_head_c: float = 1.0


BOOK = NCEPreset(
    data=GLYPHS["book"],
    n_train=6_000,
    n_test=1_200,
    training=TrainingSpec(model="small_cnn", epochs=2, lr=0.1, batch_size=128),
    identity_training=TrainingSpec(model="small_cnn", epochs=20, lr=0.1, batch_size=128),
    n_attributes=None,
    n_sources=6,
    n_theorem_sources=3,
    train_sizes=(100, 500, 2_000, 6_000),
)
PRESETS: dict[str, NCEPreset] = scaled(
    BOOK,
    smoke={
        "data": GLYPHS["smoke"],
        "n_train": 400,
        "n_test": 200,
        "training": {"epochs": 1, "lr": 0.05, "batch_size": 64},
        "identity_training": {"epochs": 1, "lr": 0.05, "batch_size": 64},
        "n_attributes": 4,
        "n_sources": 2,
        "n_theorem_sources": 1,
        "train_sizes": (100, 400),
    },
    full={
        "data": GLYPHS["full"],
        "n_train": None,
        "n_test": None,
        "training": {"model": "resnet18", "epochs": 30},
        "identity_training": {"model": "resnet18", "epochs": 60},
        "n_sources": None,
        "n_theorem_sources": 6,
        "train_sizes": (500, 2_000, 8_000, 32_000, 50_000),
    },
)
register_presets("nce", PRESETS, datasets=("glyphs", "celeba", "awa2", "cub200"))


# ------------------------------------------------------------------------------------------------
# Log-likelihoods of Theorem 1
# ------------------------------------------------------------------------------------------------


def _check_probs(probs: Any, n: int) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"source_probs must be 2-D (n, classes), got shape {probs.shape}")
    if probs.shape[0] != n:
        raise ValueError(f"source_probs has {probs.shape[0]} rows but the labels have {n}")
    if not np.all(np.isfinite(probs)):
        raise ValueError("source_probs contains NaN or inf")
    return probs


def _check_codes(labels: Any, name: str, n_classes: int | None = None) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"{name} must be integer class codes, got dtype {labels.dtype}")
    if n_classes is not None and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"{name} must lie in [0, {n_classes}), the columns of the probabilities")
    return labels


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
    labels = _check_codes(labels, "labels")
    probs = _check_probs(probs, labels.size)
    labels = _check_codes(labels, "labels", probs.shape[1])
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
        Target labels of the same images (any hashable values).

    Returns
    -------
    float
        ``(1/n) sum_i log p_Y(y_i)`` in nats.
    """
    z = _check_codes(source_labels, "source_labels")
    probs = _check_probs(source_probs, z.size)
    z = _check_codes(z, "source_labels", probs.shape[1])
    target = np.asarray(target_labels)
    if target.ndim != 1 or target.size != z.size:
        raise ValueError(f"target_labels must be 1-D with {z.size} entries, got {target.shape}")
    _, y = np.unique(target, return_inverse=True)
    y = y.reshape(-1)
    n_z, n_y = probs.shape[1], int(y.max()) + 1
    joint = np.bincount(z * n_y + y, minlength=n_z * n_y).reshape(n_z, n_y).astype(np.float64)
    counts = joint.sum(axis=1, keepdims=True)
    # A source class absent from the training labels has no empirical conditional; any
    # distribution keeps the bound, so use the target marginal.
    marginal = joint.sum(axis=0) / z.size
    conditional = np.where(counts > 0, joint / np.maximum(counts, 1), marginal)
    with np.errstate(divide="ignore"):
        return float(np.mean(np.log((probs @ conditional)[np.arange(y.size), y])))


# ------------------------------------------------------------------------------------------------
# Data and tasks
# ------------------------------------------------------------------------------------------------


def nce_dataset(run: RunParams, preset: NCEPreset) -> ImageDataset:
    """The dataset the chapter runs on (loaded once per process)."""
    return run_dataset(run, preset.data)


def _subsample(indices: np.ndarray, n: int | None, generator: np.random.Generator) -> np.ndarray:
    indices = np.asarray(indices)
    if n is None or n >= indices.size:
        return indices
    return np.sort(generator.choice(indices, size=n, replace=False))


def _rows(run: RunParams, preset: NCEPreset) -> tuple[np.ndarray, np.ndarray]:
    ds = nce_dataset(run, preset)
    train = _subsample(ds.splits["train"], preset.n_train, rng(run.seed, "nce", "train-rows"))
    test = _subsample(ds.splits["test"], preset.n_test, rng(run.seed, "nce", "test-rows"))
    return train, test


def visual_difficulty(ds: ImageDataset) -> dict[str, str]:
    """Attributes the dataset marks as visually ``"trivial"`` or ``"hard"`` (balanced pairs).

    Glyphs records in ``metadata["visual_difficulty"]`` the attributes designed so that their
    difficulty is visual rather than statistical; other datasets give an empty mapping.
    """
    return dict(ds.metadata.get("visual_difficulty") or {})


def select_attributes(ds: ImageDataset, n: int | None = None) -> list[str]:
    """Binary attributes of ``ds``: the visually designed ones first, then alternating kinds.

    The attributes :func:`visual_difficulty` marks come first, so that every scale includes the
    case where label statistics fail; the rest alternate between attribute kinds (character,
    font, appearance, ...), so that the first ``n`` are spread over kinds. Attributes with a
    single value are skipped: they define no classification task.
    """
    usable = [name for name in ds.attributes if ds.labels[name].nunique() > 1]
    designed = [name for name in visual_difficulty(ds) if name in usable]
    by_kind: dict[str, list[str]] = {}
    for name in usable:
        if name not in designed:
            by_kind.setdefault(ds.attribute_kinds.get(name, "other"), []).append(name)
    order = designed + [
        names[i]
        for i in range(max((len(v) for v in by_kind.values()), default=0))
        for names in by_kind.values()
        if i < len(names)
    ]
    return order if n is None else order[:n]


def _restricted(
    spec: TaskSpec, train: np.ndarray, test: np.ndarray, name: str | None = None
) -> TaskSpec:
    return TaskSpec(
        name=name or spec.name,
        target=spec.target,
        kind=spec.kind,
        classes=spec.classes,
        train_indices=train,
        test_indices=test,
        params=spec.params,
    )


def nce_tasks(run: RunParams, preset: NCEPreset) -> dict[str, TaskSpec]:
    """The chapter's tasks on its train/test rows: every selected attribute, then the identity.

    Keys are attribute names and ``"identity"``.
    """
    ds = nce_dataset(run, preset)
    train, test = _rows(run, preset)
    specs = attribute_tasks(ds, select_attributes(ds, preset.n_attributes))
    tasks = {s.target: _restricted(s, train, test) for s in specs}
    tasks["identity"] = _restricted(identity_task(ds), train, test)
    return tasks


def _network(run: RunParams, preset: NCEPreset, spec: TaskSpec, progress: bool) -> Network:
    identity = spec.kind == "identity"
    training = preset.identity_training if identity else preset.training
    return train_network(
        run,
        nce_dataset(run, preset),
        spec,
        training,
        role="identity" if identity else "source",
        progress=progress,
    )


def _outputs(
    run: RunParams, preset: NCEPreset, network: Network, spec: TaskSpec
) -> dict[str, dict[str, np.ndarray]]:
    images = nce_dataset(run, preset).images
    return {
        split: network_outputs(run, network, images[rows], ("probs", "features"))
        for split, rows in (("train", spec.train_indices), ("test", spec.test_indices))
    }


# ------------------------------------------------------------------------------------------------
# Runners
# ------------------------------------------------------------------------------------------------


def _transfer_rows(
    run: RunParams,
    preset: NCEPreset,
    source: str,
    targets: Sequence[str],
    likelihoods: bool,
    progress: bool,
) -> list[dict[str, Any]]:
    """One source: train (or load) its network, re-train heads for every target, make rows."""
    tasks = nce_tasks(run, preset)
    ds = nce_dataset(run, preset)
    spec = tasks[source]
    network = _network(run, preset, spec, progress)
    out = _outputs(run, preset, network, spec)
    train_rows, test_rows = spec.train_indices, spec.test_indices
    specs = [tasks[t] for t in targets]
    if likelihoods:  # Theorem 1: logistic heads to convergence, one target at a time
        heads = pd.concat(
            [
                head_transfer(
                    run,
                    ds,
                    [s],
                    out["train"]["features"],
                    train_rows,
                    out["test"]["features"],
                    test_rows,
                    "logistic",
                    C=preset.theorem_head_c,
                )
                for s in specs
            ]
        )
    else:
        heads = head_transfer(
            run,
            ds,
            specs,
            out["train"]["features"],
            train_rows,
            out["test"]["features"],
            test_rows,
            preset.head_method,
        )
    z = task_codes(ds, spec, train_rows, "train")
    l_z = log_likelihood(out["train"]["probs"], z)
    rows = []
    for target, (_, head) in zip(targets, heads.iterrows()):
        y = task_codes(ds, tasks[target], train_rows, "train")
        ce = conditional_entropy(y, z)
        row = {
            "source": source,
            "target": target,
            "source_kind": ds.attribute_kinds.get(spec.target, "identity"),
            "target_kind": ds.attribute_kinds.get(tasks[target].target, "other"),
            "conditional_entropy": ce,
            "target_entropy": float(hardness(y)),
            "test_accuracy": float(head["accuracy"]),
            "test_error": 1.0 - float(head["accuracy"]),
            "majority_accuracy": float(head["majority_accuracy"]),
            "source_test_accuracy": network.test_accuracy,
            "source_majority_accuracy": network.majority_accuracy,
            "n_train": int(train_rows.size),
            "n_test": int(test_rows.size),
        }
        if likelihoods:
            mixture = mixture_log_likelihood(out["train"]["probs"], z, y)
            head_ll = float(head["train_log_likelihood"])
            transferred = max(head_ll, mixture)
            row.update(
                {
                    "source_log_likelihood": l_z,
                    "bound": l_z - ce,
                    "head_log_likelihood": head_ll,
                    "mixture_log_likelihood": mixture,
                    "transferred_log_likelihood": transferred,
                    "bound_holds": bool(transferred >= l_z - ce - _BOUND_TOLERANCE),
                    "head_bound_holds": bool(head_ll >= l_z - ce - _BOUND_TOLERANCE),
                    "test_log_likelihood": float(head["test_log_likelihood"]),
                }
            )
        rows.append(row)
    return rows


def _transfer_sweep(
    run: RunParams,
    preset: NCEPreset,
    name: str,
    sources: Sequence[str],
    targets: Sequence[str],
    likelihoods: bool,
    progress: bool,
    executor: Executor | None,
) -> pd.DataFrame:
    store = result_store(run, _MODULE, name, ("source", "target"), preset)

    def pairs(source: str) -> list[dict[str, str]]:
        return [{"source": source, "target": t} for t in targets if t != source]

    compute = functools.partial(_transfer_items, run, preset, tuple(targets), likelihoods, progress)
    return run_sweep(
        store, list(sources), compute, keys=pairs, executor=executor, progress=progress, desc=name
    )


def _transfer_items(
    run: RunParams,
    preset: NCEPreset,
    targets: tuple[str, ...],
    likelihoods: bool,
    progress: bool,
    source: str,
) -> list[dict[str, Any]]:
    return _transfer_rows(
        run, preset, source, [t for t in targets if t != source], likelihoods, progress
    )


def _attributes(run: RunParams, preset: NCEPreset) -> list[str]:
    return [name for name in nce_tasks(run, preset) if name != "identity"]


def run_attribute_transfer(
    run: RunParams, preset: NCEPreset, *, progress: bool = True, executor: Executor | None = None
) -> pd.DataFrame:
    """Attribute-to-attribute transferability (§5.1, Fig. 2).

    For each source attribute ``Z``: train a network on ``Z``, freeze it, train a head
    (``preset.head_method``, a linear SVM as in the paper) on every other attribute ``Y`` from the
    frozen training features and measure its test error. ``H(Y|Z)`` is computed from the
    training labels of ``Y`` and ``Z`` (not from network predictions), as in Eq. (6)-(7).

    Returns
    -------
    DataFrame
        One row per (source, target): ``source, target, source_kind, target_kind,
        conditional_entropy, target_entropy, test_accuracy, test_error, majority_accuracy,
        source_test_accuracy, source_majority_accuracy, n_train, n_test``.
    """
    attributes = _attributes(run, preset)
    sources = attributes[: preset.n_sources]
    return _transfer_sweep(
        run,
        preset,
        f"attribute-transfer-{preset.head_method}",
        sources,
        attributes,
        False,
        progress,
        executor,
    )


def run_theorem_check(
    run: RunParams, preset: NCEPreset, *, progress: bool = True, executor: Executor | None = None
) -> pd.DataFrame:
    """Empirical check of Theorem 1 (Eq. 10) on trained networks.

    For each of the first ``preset.n_theorem_sources`` source attributes and every other
    attribute: the source network's training log-likelihood ``l_Z``, the bound ``l_Z - H(Y|Z)``,
    the training log-likelihood of a logistic head fitted to convergence on the frozen features
    (the space K' of Discussion 2), that of the paper's constructed head ``k-bar`` (Eq. 9), and
    the transferred log-likelihood, the larger of the two (the optimum over ``K = K' + {k-bar}``).

    Returns
    -------
    DataFrame
        The columns of :func:`run_attribute_transfer` and ``source_log_likelihood, bound,
        head_log_likelihood, mixture_log_likelihood, transferred_log_likelihood, bound_holds,
        head_bound_holds, test_log_likelihood``.
    """
    attributes = _attributes(run, preset)
    sources = attributes[: preset.n_theorem_sources]
    return _transfer_sweep(
        run, preset, "theorem-check", sources, attributes, True, progress, executor
    )


def _dedicated_row(
    run: RunParams, preset: NCEPreset, progress: bool, attribute: str
) -> dict[str, Any]:
    ds = nce_dataset(run, preset)
    spec = nce_tasks(run, preset)[attribute]
    network = _network(run, preset, spec, progress)
    out = _outputs(run, preset, network, spec)
    train_codes = task_codes(ds, spec, spec.train_indices, "train")
    test_codes = task_codes(ds, spec, spec.test_indices, "test")
    return {
        "attribute": attribute,
        "kind": ds.attribute_kinds.get(attribute, "other"),
        "hardness": float(hardness(train_codes)),
        "dedicated_accuracy": network.test_accuracy,
        "dedicated_error": 1.0 - network.test_accuracy,
        "dedicated_train_accuracy": network.train_accuracy,
        "majority_accuracy": majority_accuracy(train_codes, test_codes),
        "beats_baseline": network.beats_baseline(),
        "dedicated_train_log_likelihood": log_likelihood(out["train"]["probs"], train_codes),
        "dedicated_test_log_likelihood": log_likelihood(out["test"]["probs"], test_codes),
        "epochs": len(network.history),
        "seconds": float(network.history["seconds"].iloc[-1]),
        "n_train": int(spec.train_indices.size),
        "n_test": int(spec.test_indices.size),
    }


def run_dedicated(
    run: RunParams, preset: NCEPreset, *, progress: bool = True, executor: Executor | None = None
) -> pd.DataFrame:
    """One network trained from scratch for each attribute (the §5.1 sources are among them).

    Returns
    -------
    DataFrame
        One row per attribute: ``attribute, kind, hardness (= H(Z|C) = H(Z) on the training
        labels), dedicated_accuracy, dedicated_error, dedicated_train_accuracy,
        majority_accuracy, beats_baseline, dedicated_train_log_likelihood,
        dedicated_test_log_likelihood, epochs, seconds, n_train, n_test``.
    """
    store = result_store(run, _MODULE, "dedicated", ("attribute",), preset)
    compute = functools.partial(_dedicated_row, run, preset, progress)
    return run_sweep(
        store,
        _attributes(run, preset),
        compute,
        keys=lambda a: [{"attribute": a}],
        executor=executor,
        progress=progress,
        desc="dedicated networks",
    )


def run_hardness(
    run: RunParams, preset: NCEPreset, *, progress: bool = True, executor: Executor | None = None
) -> pd.DataFrame:
    """Task hardness (§5.3, Fig. 6): :func:`run_dedicated` with the dataset name added."""
    return run_dedicated(run, preset, progress=progress, executor=executor).assign(
        dataset=run.dataset
    )


def run_identity_transfer(
    run: RunParams, preset: NCEPreset, *, progress: bool = True, executor: Executor | None = None
) -> pd.DataFrame:
    """Identity-to-attribute transfer (§5.2, Table 1, Figs. 3-4).

    A recognition network is trained on the identity label (the character on Glyphs), frozen,
    and a head (linear SVM) is trained for every attribute on its features. Each row also
    carries the attribute's dedicated network (:func:`run_dedicated`).

    Returns
    -------
    DataFrame
        One row per attribute, sorted by increasing ``ce_given_identity`` (decreasing
        transferability): ``attribute, kind, ce_given_identity, hardness, transferred_accuracy,
        transferred_error, dedicated_accuracy, transfer_gain (= transferred - dedicated),
        majority_accuracy, identity_test_accuracy, n_train, n_test``.
    """
    attributes = _attributes(run, preset)
    transfer = _transfer_sweep(
        run,
        preset,
        f"identity-transfer-{preset.head_method}",
        ["identity"],
        attributes,
        False,
        progress,
        executor,
    )
    dedicated = run_dedicated(run, preset, progress=progress, executor=executor)
    table = transfer.rename(
        columns={
            "target": "attribute",
            "conditional_entropy": "ce_given_identity",
            "test_accuracy": "transferred_accuracy",
            "source_test_accuracy": "identity_test_accuracy",
        }
    ).merge(dedicated[["attribute", "kind", "hardness", "dedicated_accuracy"]], on="attribute")
    table["transferred_error"] = 1.0 - table["transferred_accuracy"]
    table["transfer_gain"] = table["transferred_accuracy"] - table["dedicated_accuracy"]
    columns = [
        "attribute",
        "kind",
        "ce_given_identity",
        "hardness",
        "transferred_accuracy",
        "transferred_error",
        "dedicated_accuracy",
        "transfer_gain",
        "majority_accuracy",
        "identity_test_accuracy",
        "n_train",
        "n_test",
    ]
    return (
        table[columns]
        .sort_values(["ce_given_identity", "hardness"], ascending=[True, False], kind="stable")
        .reset_index(drop=True)
    )


def _size_rows(
    run: RunParams, preset: NCEPreset, progress: bool, item: tuple[str, int]
) -> list[dict[str, Any]]:
    attribute, n = item
    ds = nce_dataset(run, preset)
    tasks = nce_tasks(run, preset)
    full, identity_spec = tasks[attribute], tasks["identity"]
    order = rng(run.seed, "nce", "size-curve-order").permutation(full.train_indices)
    subset = np.sort(order[:n])
    # At the full size the dedicated network is the chapter's network of the attribute.
    spec = (
        full
        if n == full.train_indices.size
        else _restricted(full, subset, full.test_indices, name=f"{full.name}-n{n}")
    )
    epochs = max(
        preset.training.epochs, round(preset.training.epochs * full.train_indices.size / n)
    )
    training = preset.training.replace({"epochs": epochs})
    dedicated = train_network(run, ds, spec, training, role="dedicated", progress=progress)
    identity = _network(run, preset, identity_spec, progress)
    out = _outputs(run, preset, identity, identity_spec)
    positions = np.searchsorted(identity_spec.train_indices, subset)
    head = head_transfer(
        run,
        ds,
        [spec],
        out["train"]["features"][positions],
        subset,
        out["test"]["features"],
        identity_spec.test_indices,
        preset.head_method,
    ).iloc[0]
    return [
        {
            "attribute": attribute,
            "n": n,
            "method": "dedicated",
            "accuracy": dedicated.test_accuracy,
            "epochs": epochs,
        },
        {
            "attribute": attribute,
            "n": n,
            "method": "transferred",
            "accuracy": float(head["accuracy"]),
            "epochs": 0,
        },
    ]


def run_training_size_curve(
    run: RunParams,
    preset: NCEPreset,
    *,
    progress: bool = True,
    attributes: Sequence[str] | None = None,
    executor: Executor | None = None,
) -> pd.DataFrame:
    """Accuracy versus training-set size, dedicated versus transferred (Fig. 5).

    For each size ``n`` in ``preset.train_sizes`` (nested random subsets of the training
    images): a dedicated network trained from scratch on ``n`` attribute labels, against a linear
    SVM on ``n`` attribute labels over the frozen features of the identity network (trained
    once, on the identity labels of the whole training set: identity labels are the plentiful
    ones, as the paper's recognition network was trained on other data). The dedicated networks
    get ``epochs * n_train / n`` epochs, so every size sees the same number of gradient steps.

    Without ``attributes``, the most transferable attribute from identity (lowest
    ``H(attribute | identity)``, ties broken by the higher entropy) and the least.

    Returns
    -------
    DataFrame
        One row per (attribute, n, method) with ``accuracy`` and ``epochs``; ``method`` is
        ``"dedicated"`` or ``"transferred"``.
    """
    if attributes is None:
        identity = run_identity_transfer(run, preset, progress=progress, executor=executor)
        attributes = [identity["attribute"].iloc[0], identity["attribute"].iloc[-1]]
    n_train = nce_tasks(run, preset)["identity"].train_indices.size
    sizes = sorted({min(int(n), n_train) for n in preset.train_sizes})
    items = [(a, n) for a in attributes for n in sizes]
    store = result_store(run, _MODULE, "training-size", ("attribute", "n", "method"), preset)
    return run_sweep(
        store,
        items,
        functools.partial(_size_rows, run, preset, progress),
        keys=lambda item: [
            {"attribute": item[0], "n": item[1], "method": m} for m in ("dedicated", "transferred")
        ],
        executor=executor,
        progress=progress,
        desc="training-size curve",
    )


# ------------------------------------------------------------------------------------------------
# Summaries
# ------------------------------------------------------------------------------------------------


def correlation_summary(table: pd.DataFrame, x: str, y: str, by: str | None = None) -> pd.DataFrame:
    """Pearson correlation and least-squares line of ``y`` on ``x``, per group.

    Returns
    -------
    DataFrame
        One row per group (or one row without ``by``): ``n, r, p_value, slope, intercept``.
    """
    groups = [(None, table)] if by is None else list(table.groupby(by, sort=False))
    rows = []
    for name, group in groups:
        fit = linear_fit_with_ci(group[x].to_numpy(float), group[y].to_numpy(float))
        row = {by: name} if by is not None else {}
        row.update(n=fit.n, r=fit.r, p_value=fit.p_value, slope=fit.slope, intercept=fit.intercept)
        rows.append(row)
    return pd.DataFrame(rows)


def identity_table(identity: pd.DataFrame, k: int = 5) -> pd.DataFrame:
    """The layout of the paper's Table 1 (rows 9-11) from :func:`run_identity_transfer`.

    Columns are the ``k`` attributes most and ``k`` least transferable from identity (sorted by
    increasing CE) and the average over *all* attributes; rows are the CE, the dedicated
    network's accuracy and the transferred accuracy.
    """
    table = identity.sort_values("ce_given_identity", kind="stable")
    shown = table if len(table) <= 2 * k else pd.concat([table.head(k), table.tail(k)])
    body = shown.set_index("attribute")[
        ["ce_given_identity", "dedicated_accuracy", "transferred_accuracy"]
    ].T
    body["Average (all)"] = [
        np.nan,
        table["dedicated_accuracy"].mean(),
        table["transferred_accuracy"].mean(),
    ]
    body.index = [
        "CE (decreasing transferability)",
        "Dedicated network",
        "Transfer (identity + head)",
    ]
    return body
