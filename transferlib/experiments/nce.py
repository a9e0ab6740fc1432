"""Experiments of Tran, Nguyen & Hassner (ICCV 2019): transferability and hardness from labels.

The paper estimates how well a representation trained for a source task ``Z`` transfers to a
target task ``Y`` on the same images by the conditional entropy ``H(Y|Z)`` of the two training
label sequences, and how hard a task is by ``H(Z|C) = H(Z)`` (transfer from a constant task).
This module runs every experiment of its Section 5 on a :class:`transferlib.data.ImageDataset`:

* :func:`run_theorem_check` -- Theorem 1: transferred training log-likelihood versus the bound
  ``l_Z - H(Y|Z)``;
* :func:`run_attribute_transfer` -- §5.1 / Fig. 2: attribute-to-attribute transfer, CE versus
  the test error of a linear SVM on frozen source features;
* :func:`run_identity_transfer` -- §5.2 / Table 1 / Figs. 3-4: transfer from the identity label;
* :func:`run_training_size_curve` -- Fig. 5: dedicated versus transferred accuracy by training size;
* :func:`run_hardness` -- §5.3 / Fig. 6: ``H(Z|C)`` versus the error of a dedicated network.

Every runner takes an :class:`NCEConfig` (build one with :func:`nce_config`) and returns a tidy
table. Networks come from :func:`transferlib.training.train_cached` (one network per
``(label, training set, schedule)``, shared between runners: the network trained for attribute
``a`` is both a §5.1 source and the §5.2/§5.3 dedicated network of ``a``), features from the
cached :func:`transferlib.training.extract`, and finished rows are appended to a
:class:`transferlib.cache.ResultStore`, so an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from transferlib._progress import tqdm

from transferlib.cache import ResultStore, cache_root, config_key
from transferlib.config import check_parameters
from transferlib.data import as_task, load_dataset
from transferlib.evaluation import linear_fit_with_ci
from transferlib.scores import conditional_entropy, hardness
from transferlib.training import extract, retrain_heads, train_cached

__all__ = [
    "NCEConfig",
    "correlation_summary",
    "identity_table",
    "log_likelihood",
    "majority_error",
    "mixture_log_likelihood",
    "nce_config",
    "nce_dataset",
    "run_attribute_transfer",
    "run_dedicated",
    "run_hardness",
    "run_identity_transfer",
    "run_theorem_check",
    "run_training_size_curve",
    "select_attributes",
    "split_indices",
    "visual_difficulty",
]

# Logistic head of the Theorem-1 check: scikit-learn's default penalty ||W||^2 / (2 C n) with
# C = 1, which is weak at thousands of images, fitted by L-BFGS until converged. Heads are fitted
# one task at a time: the batched solver optimises the sum over tasks with one shared line
# search and converged several times slower on the book-scale features.
_THEOREM_HEAD = {"C": 1.0, "max_iter": 1000}
# Slack for the floating-point comparison of two mean log-likelihoods.
_BOUND_TOLERANCE = 1e-9


@dataclass(frozen=True)
class NCEConfig:
    """Everything an NCE experiment depends on.

    Attributes
    ----------
    scale : str
        Scale the configuration was built for ("smoke", "book", "full"); informational.
    dataset : str
        Dataset name for :func:`transferlib.data.load_dataset`.
    dataset_options : mapping
        Extra keyword arguments for :func:`~transferlib.data.load_dataset`.
    data_root : str or None
        Folder of a real dataset.
    n_train, n_test : int or None
        Images drawn (without replacement, by ``seed``) from the train and test splits.
    model : str
        Network name for :func:`transferlib.models.build_model`.
    epochs, identity_epochs : int
        Epochs of a per-attribute network and of the identity network.
    lr : float
        Initial learning rate.
    batch_size : int
        Mini-batch size.
    identity_label : str or None
        Label column playing the role of the paper's face identity; None uses the dataset's
        ``metadata["identity_column"]`` ("char" on Glyphs, the subject on CelebA).
    n_attributes, n_sources : int or None
        Attributes used (targets, dedicated networks) and §5.1 source attributes (None: all).
    n_theorem_sources : int
        Source attributes of the Theorem-1 check.
    train_sizes : tuple of int
        Training-set sizes of :func:`run_training_size_curve`.
    curve_attributes : tuple of str or None
        Attributes of the size curves; None picks the most transferable from identity and the
        least transferable (see :func:`run_training_size_curve`).
    head_method : str
        Head retrained on frozen features for the transfer experiments ("linear_svm" as in the paper).
    seed : int
        Seed of subsampling and training.
    device : str
        Torch device ("auto" picks a GPU when there is one).
    cache_dir : str or None
        Cache folder (see :func:`transferlib.cache.cache_root`).
    """

    scale: str
    dataset: str = "glyphs"
    dataset_options: Mapping[str, Any] = field(default_factory=dict)
    data_root: str | None = None
    n_train: int | None = None
    n_test: int | None = None
    model: str = "small_cnn"
    epochs: int = 3
    identity_epochs: int = 6
    lr: float = 0.05
    batch_size: int = 128
    identity_label: str | None = None
    n_attributes: int | None = None
    n_sources: int | None = None
    n_theorem_sources: int = 3
    train_sizes: tuple[int, ...] = ()
    curve_attributes: tuple[str, ...] | None = None
    head_method: str = "linear_svm"
    seed: int = 0
    device: str = "auto"
    cache_dir: str | None = None

    def result_key(self) -> str:
        """Hash of every field that changes results (not the device or the cache folder)."""
        fields = dataclasses.asdict(self)
        for name in ("device", "cache_dir", "scale"):
            fields.pop(name)
        return config_key(fields)


def nce_config(
    scale: str = "book",
    dataset: str = "glyphs",
    data_root: str | Path | None = None,
    device: str = "auto",
    seed: int = 0,
    cache_dir: str | Path | None = None,
    **overrides: Any,
) -> NCEConfig:
    """Build the :class:`NCEConfig` of the chapter's preset at ``scale``.

    Parameters
    ----------
    scale, dataset, data_root, device, seed, cache_dir
        The notebook parameters; validated by :func:`transferlib.config.check_parameters`.
    **overrides
        Any :class:`NCEConfig` field to change (e.g. ``n_sources=2``).

    Returns
    -------
    NCEConfig
    """
    preset = check_parameters("nce", scale, dataset, data_root)
    options = {"n_images": preset.n_images} if dataset == "glyphs" else {}
    cfg = NCEConfig(
        scale=scale,
        dataset=dataset,
        dataset_options=options,
        data_root=None if data_root is None else str(data_root),
        n_train=preset.n_train,
        n_test=preset.n_test,
        model=preset.model,
        epochs=preset.epochs,
        identity_epochs=preset.identity_epochs,
        lr=preset.lr,
        batch_size=preset.batch_size,
        n_attributes=preset.n_attributes,
        n_sources=preset.n_sources,
        n_theorem_sources=preset.n_theorem_sources,
        train_sizes=tuple(preset.train_sizes),
        seed=seed,
        device=device,
        cache_dir=None if cache_dir is None else str(cache_dir),
    )
    return dataclasses.replace(cfg, **overrides)


# ------------------------------------------------------------------------------------------------
# Log-likelihoods of Theorem 1
# ------------------------------------------------------------------------------------------------


def _codes(labels: Any, name: str) -> tuple[np.ndarray, int]:
    values = np.asarray(labels)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {values.shape}")
    _, codes = np.unique(values, return_inverse=True)
    return codes.reshape(-1), int(codes.max()) + 1


def _check_probs(probs: Any, n: int) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"source_probs must be 2-D (n, classes), got shape {probs.shape}")
    if probs.shape[0] != n:
        raise ValueError(f"source_probs has {probs.shape[0]} rows but the labels have {n}")
    if not np.all(np.isfinite(probs)):
        raise ValueError("source_probs contains NaN or inf")
    return probs


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
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be integer class codes, got dtype {labels.dtype}")
    probs = _check_probs(probs, labels.size)
    if labels.min() < 0 or labels.max() >= probs.shape[1]:
        raise ValueError(f"labels must lie in [0, {probs.shape[1]}), the columns of probs")
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
    z = np.asarray(source_labels)
    if z.ndim != 1 or z.size == 0:
        raise ValueError(f"source_labels must be a non-empty 1-D array, got shape {z.shape}")
    if not np.issubdtype(z.dtype, np.integer):
        raise TypeError(f"source_labels must be integer class codes, got dtype {z.dtype}")
    y, n_y = _codes(target_labels, "target_labels")
    if y.size != z.size:
        raise ValueError(f"target_labels has {y.size} entries but source_labels has {z.size}")
    probs = _check_probs(source_probs, z.size)
    n_z = probs.shape[1]
    if z.min() < 0 or z.max() >= n_z:
        raise ValueError(f"source_labels must lie in [0, {n_z}), the columns of source_probs")
    joint = np.bincount(z * n_y + y, minlength=n_z * n_y).reshape(n_z, n_y).astype(np.float64)
    counts = joint.sum(axis=1, keepdims=True)
    # A source class absent from the training labels has no empirical conditional; any
    # distribution keeps the bound, so use the target marginal.
    marginal = joint.sum(axis=0) / z.size
    conditional = np.where(counts > 0, joint / np.maximum(counts, 1), marginal)
    target_probs = probs @ conditional
    with np.errstate(divide="ignore"):
        return float(np.mean(np.log(target_probs[np.arange(y.size), y])))


# ------------------------------------------------------------------------------------------------
# Data, networks and features
# ------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def _load(dataset: str, data_root: str | None, seed: int, options: tuple) -> Any:
    return load_dataset(dataset, data_root=data_root, seed=seed, **dict(options))


def nce_dataset(cfg: NCEConfig) -> Any:
    """The dataset an experiment runs on (loaded once per process, then from memory)."""
    return _load(cfg.dataset, cfg.data_root, cfg.seed, tuple(sorted(cfg.dataset_options.items())))


def _subsample(indices: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    indices = np.asarray(indices)
    if n is None or n >= indices.size:
        return indices
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(indices, size=n, replace=False))


def split_indices(cfg: NCEConfig) -> tuple[np.ndarray, np.ndarray]:
    """Training and test rows every runner of ``cfg`` uses (seeded subsets of the splits)."""
    ds = nce_dataset(cfg)
    train = _subsample(ds.splits["train"], cfg.n_train, cfg.seed)
    test = _subsample(ds.splits["test"], cfg.n_test, cfg.seed + 1)
    return train, test


def majority_error(cfg: NCEConfig, attribute: str) -> float:
    """Test error of the rule "always predict the training majority" (uses no image at all).

    For a binary attribute it is essentially a function of the label entropy ``H(Z)``, the
    floor below which a network has learned something from the pixels.
    """
    codes = _column(nce_dataset(cfg), attribute)
    train_idx, test_idx = split_indices(cfg)
    return float(np.mean(codes[test_idx] != np.bincount(codes[train_idx]).argmax()))


def _column(ds: Any, column: str) -> np.ndarray:
    """Integer codes of a label column over the whole dataset, in the order :func:`as_task` uses."""
    _, codes = np.unique(ds.column(column), return_inverse=True)
    return codes.reshape(-1).astype(np.int64)


def _identity(cfg: NCEConfig) -> str:
    if cfg.identity_label is not None:
        return cfg.identity_label
    metadata = nce_dataset(cfg).metadata
    if "identity_column" not in metadata:
        raise ValueError(
            f"dataset {cfg.dataset!r} names no identity column; set NCEConfig.identity_label"
        )
    return str(metadata["identity_column"])


def visual_difficulty(ds: Any) -> dict[str, str]:
    """Attributes the dataset documents as visually "trivial" or "hard" (Glyphs marks them).

    Read from ``metadata["attribute_descriptions"]``, where Glyphs writes "VISUALLY TRIVIAL" or
    "VISUALLY HARD" into the description of attributes designed so that their difficulty is
    visual rather than statistical. Datasets without such notes give an empty mapping.
    """
    notes = getattr(ds, "metadata", {}).get("attribute_descriptions") or {}
    marks = {"VISUALLY TRIVIAL": "trivial", "VISUALLY HARD": "hard"}
    return {
        name: label
        for name, text in notes.items()
        for mark, label in marks.items()
        if mark in str(text)
    }


def select_attributes(ds: Any, n: int | None = None) -> list[str]:
    """Binary attributes of ``ds``: the visually designed ones first, then alternating kinds.

    The attributes :func:`visual_difficulty` marks (Glyphs' visually trivial and visually hard
    balanced pair) come first, so that every scale includes the case where label statistics
    fail; the rest alternate between attribute kinds (character, font, appearance, ...), so
    that the first ``n`` are spread over kinds rather than ``n`` of one kind. Attributes with a
    single value are skipped: they define no classification task.

    Parameters
    ----------
    ds : ImageDataset
    n : int or None
        How many to return (None: all).
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


@dataclass(frozen=True)
class _Network:
    """A trained network with its train/test outputs (probabilities and features)."""

    label: str
    from_cache: bool
    train_probs: np.ndarray
    train_features: np.ndarray
    test_probs: np.ndarray
    test_features: np.ndarray
    train_labels: np.ndarray
    test_labels: np.ndarray


def _network(
    cfg: NCEConfig,
    label: str,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    epochs: int,
    progress: bool,
) -> _Network:
    """Train (or load) a network for ``label`` on ``train_idx`` and extract its outputs."""
    ds = nce_dataset(cfg)
    train_data, test_data = as_task(
        ds, label, train_indices=train_idx, test_indices=test_idx, seed=cfg.seed
    )
    result = train_cached(
        cfg.model,
        train_data,
        test_data,
        epochs=epochs,
        lr=cfg.lr,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        device=cfg.device,
        cache_dir=cfg.cache_dir,
        progress=progress,
    )
    if progress:
        status = "loaded from cache" if result.from_cache else "trained"
        tqdm.write(f"network for {label!r} ({len(train_data)} images, {epochs} epochs): {status}")
    key = config_key(
        {
            "model": cfg.model,
            "label": label,
            "train": train_data.fingerprint(),
            "epochs": epochs,
            "lr": cfg.lr,
            "batch_size": cfg.batch_size,
            "seed": cfg.seed,
        }
    )
    outputs = {
        split: extract(
            result.model,
            data.images,
            outputs=("probs", "features"),
            device=cfg.device,
            cache_dir=cfg.cache_dir,
            cache_key=f"nce-{key}-{split}-{data.fingerprint()}",
        )
        for split, data in (("train", train_data), ("test", test_data))
    }
    return _Network(
        label=label,
        from_cache=bool(result.from_cache),
        train_probs=outputs["train"]["probs"],
        train_features=outputs["train"]["features"],
        test_probs=outputs["test"]["probs"],
        test_features=outputs["test"]["features"],
        train_labels=np.asarray(train_data.labels),
        test_labels=np.asarray(test_data.labels),
    )


def _store(cfg: NCEConfig, name: str, key_columns: Sequence[str]) -> ResultStore:
    path = cache_root(cfg.cache_dir) / "experiments" / "nce" / f"{name}-{cfg.result_key()}.csv"
    return ResultStore(path, key_columns)


def _rows(store: ResultStore, column: str, values: Iterable[str], order: Sequence[str]) -> pd.DataFrame:
    """Stored rows whose ``column`` is in ``values``, in a stable order."""
    table = store.table()
    table = table[table[column].astype(str).isin(list(values))]
    return table.sort_values(list(order), kind="stable").reset_index(drop=True)


def _heads(
    network: _Network,
    ds: Any,
    targets: Sequence[str],
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    method: str,
    **kwargs: Any,
) -> pd.DataFrame:
    """Retrain one head per target on the network's frozen features; one row per target.

    Logistic heads are fitted one target at a time (see ``_THEOREM_HEAD``), the others in one
    call to :func:`~transferlib.training.retrain_heads`.
    """
    groups = [[t] for t in targets] if method == "logistic" else [list(targets)]
    table = pd.concat(
        [
            retrain_heads(
                network.train_features,
                np.stack([_column(ds, t)[train_idx] for t in group]),
                network.test_features,
                np.stack([_column(ds, t)[test_idx] for t in group]),
                method=method,
                task_names=group,
                **kwargs,
            )
            for group in groups
        ]
    )
    return table.set_index("task").loc[list(targets)]


# ------------------------------------------------------------------------------------------------
# Runners
# ------------------------------------------------------------------------------------------------


def _transfer_sweep(
    cfg: NCEConfig,
    name: str,
    sources: Sequence[str],
    targets: Sequence[str],
    method: str,
    make_rows: Callable[[_Network, pd.Series, np.ndarray, np.ndarray], dict],
    progress: bool,
    head_kwargs: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Shared loop of the transfer runners: per source, train/load, retrain heads, store rows."""
    ds = nce_dataset(cfg)
    train_idx, test_idx = split_indices(cfg)
    store = _store(cfg, name, ("source", "target"))
    for source in tqdm(sources, desc=name, disable=not progress):
        todo = [t for t in targets if t != source and not store.has({"source": source, "target": t})]
        if not todo:
            continue
        epochs = cfg.identity_epochs if source == _identity(cfg) else cfg.epochs
        network = _network(cfg, source, train_idx, test_idx, epochs, progress)
        heads = _heads(network, ds, todo, train_idx, test_idx, method, **(head_kwargs or {}))
        z_train = _column(ds, source)[train_idx]
        for target in todo:
            y_train = _column(ds, target)[train_idx]
            row = {
                "source": source,
                "target": target,
                "source_kind": ds.attribute_kinds.get(source, "identity"),
                "target_kind": ds.attribute_kinds.get(target, "other"),
                "conditional_entropy": conditional_entropy(y_train, z_train),
                "target_entropy": float(hardness(y_train)),
                **make_rows(network, heads.loc[target], z_train, y_train),
                "n_train": int(train_idx.size),
                "n_test": int(test_idx.size),
            }
            store.append(row)
    table = _rows(store, "source", sources, ("source", "target"))
    return table[table["target"].isin(list(targets))].reset_index(drop=True)


def _accuracy_row(network: _Network, head: pd.Series, z_train: np.ndarray, y_train: np.ndarray) -> dict:
    source_accuracy = float(np.mean(network.test_probs.argmax(axis=1) == network.test_labels))
    return {
        "test_accuracy": float(head["accuracy"]),
        "test_error": 1.0 - float(head["accuracy"]),
        "source_test_accuracy": source_accuracy,
    }


def _likelihood_row(network: _Network, head: pd.Series, z_train: np.ndarray, y_train: np.ndarray) -> dict:
    l_z = log_likelihood(network.train_probs, network.train_labels)
    ce = float(conditional_entropy(y_train, z_train))
    head_ll = float(head["train_log_likelihood"])
    mixture_ll = mixture_log_likelihood(network.train_probs, network.train_labels, y_train)
    transferred = max(head_ll, mixture_ll)
    bound = l_z - ce
    return {
        "source_log_likelihood": l_z,
        "bound": bound,
        "head_log_likelihood": head_ll,
        "mixture_log_likelihood": mixture_ll,
        "transferred_log_likelihood": transferred,
        "bound_holds": bool(transferred >= bound - _BOUND_TOLERANCE),
        "head_bound_holds": bool(head_ll >= bound - _BOUND_TOLERANCE),
        "test_log_likelihood": float(head["test_log_likelihood"]),
        "test_accuracy": float(head["accuracy"]),
    }


def _attributes(cfg: NCEConfig) -> list[str]:
    return select_attributes(nce_dataset(cfg), cfg.n_attributes)


def _sources(cfg: NCEConfig, n: int | None) -> list[str]:
    return _attributes(cfg)[: n if n is not None else None]


def run_attribute_transfer(cfg: NCEConfig, progress: bool = True) -> pd.DataFrame:
    """Attribute-to-attribute transferability (§5.1, Fig. 2).

    For each source attribute ``Z``: train a network on ``Z``, freeze it, train a head
    (``cfg.head_method``, a linear SVM as in the paper) on every other attribute ``Y`` from the
    frozen training features and measure its test error. ``H(Y|Z)`` is computed from the
    training labels of ``Y`` and ``Z`` (not from network predictions), as in Eq. (6)-(7).

    Returns
    -------
    DataFrame
        One row per (source, target): ``source, target, source_kind, target_kind,
        conditional_entropy, target_entropy, test_accuracy, test_error, source_test_accuracy,
        n_train, n_test``.
    """
    return _transfer_sweep(
        cfg,
        f"attribute-transfer-{cfg.head_method}",
        _sources(cfg, cfg.n_sources),
        _attributes(cfg),
        cfg.head_method,
        _accuracy_row,
        progress,
    )


def run_theorem_check(cfg: NCEConfig, progress: bool = True) -> pd.DataFrame:
    """Empirical check of Theorem 1 (Eq. 10) on trained networks.

    For each of the first ``cfg.n_theorem_sources`` source attributes and every other attribute:
    the source network's training log-likelihood ``l_Z``, the bound ``l_Z - H(Y|Z)``, the
    training log-likelihood of a logistic head fitted to convergence on the frozen features
    (the space K' of Discussion 2), that of the paper's constructed head ``k-bar`` (Eq. 9), and
    the transferred log-likelihood ``max`` of the two (the optimum over ``K = K' + {k-bar}``).

    Returns
    -------
    DataFrame
        One row per (source, target) with ``conditional_entropy, source_log_likelihood, bound,
        head_log_likelihood, mixture_log_likelihood, transferred_log_likelihood, bound_holds,
        head_bound_holds, test_log_likelihood, test_accuracy`` and the kinds and sizes.
    """
    return _transfer_sweep(
        cfg,
        "theorem-check",
        _sources(cfg, cfg.n_theorem_sources),
        _attributes(cfg),
        "logistic",
        _likelihood_row,
        progress,
        head_kwargs=_THEOREM_HEAD,
    )


def run_dedicated(cfg: NCEConfig, progress: bool = True) -> pd.DataFrame:
    """Dedicated network per attribute: one network trained from scratch for each attribute.

    These networks are the same cached networks the §5.1 sweep uses as sources.

    Returns
    -------
    DataFrame
        One row per attribute: ``attribute, kind, hardness (= H(Z|C) = H(Z) on the training
        labels), dedicated_accuracy, dedicated_error, dedicated_train_log_likelihood,
        dedicated_test_log_likelihood, n_train, n_test``.
    """
    ds = nce_dataset(cfg)
    train_idx, test_idx = split_indices(cfg)
    attributes = _attributes(cfg)
    store = _store(cfg, "dedicated", ("attribute",))
    for attribute in tqdm(attributes, desc="dedicated networks", disable=not progress):
        if store.has({"attribute": attribute}):
            continue
        network = _network(cfg, attribute, train_idx, test_idx, cfg.epochs, progress)
        accuracy = float(np.mean(network.test_probs.argmax(axis=1) == network.test_labels))
        store.append(
            {
                "attribute": attribute,
                "kind": ds.attribute_kinds.get(attribute, "other"),
                "hardness": float(hardness(_column(ds, attribute)[train_idx])),
                "dedicated_accuracy": accuracy,
                "dedicated_error": 1.0 - accuracy,
                "dedicated_train_log_likelihood": log_likelihood(
                    network.train_probs, network.train_labels
                ),
                "dedicated_test_log_likelihood": log_likelihood(
                    network.test_probs, network.test_labels
                ),
                "n_train": int(train_idx.size),
                "n_test": int(test_idx.size),
            }
        )
    table = _rows(store, "attribute", attributes, ("attribute",))
    return table.set_index("attribute").loc[attributes].reset_index()


def run_hardness(cfg: NCEConfig, progress: bool = True) -> pd.DataFrame:
    """Task hardness (§5.3, Fig. 6): ``H(Z|C)`` of every attribute versus its dedicated error.

    Returns
    -------
    DataFrame
        The :func:`run_dedicated` table (one row per attribute, ``hardness`` and
        ``dedicated_error`` among its columns), with the dataset name added.
    """
    table = run_dedicated(cfg, progress)
    return table.assign(dataset=cfg.dataset)


def run_identity_transfer(cfg: NCEConfig, progress: bool = True) -> pd.DataFrame:
    """Identity-to-attribute transfer (§5.2, Table 1, Figs. 3-4).

    A recognition network is trained on ``cfg.identity_label`` (the character class on Glyphs),
    frozen, and a head (linear SVM) is trained for every attribute on its features. Each row
    also carries the attribute's dedicated network (:func:`run_dedicated`).

    Returns
    -------
    DataFrame
        One row per attribute, sorted by increasing ``ce_given_identity`` (decreasing
        transferability): ``attribute, kind, ce_given_identity, hardness, transferred_accuracy,
        transferred_error, dedicated_accuracy, transfer_gain (= transferred - dedicated),
        identity_test_accuracy, n_train, n_test``.
    """
    attributes = _attributes(cfg)
    transfer = _transfer_sweep(
        cfg,
        f"identity-transfer-{cfg.head_method}",
        [_identity(cfg)],
        attributes,
        cfg.head_method,
        _accuracy_row,
        progress,
    )
    dedicated = run_dedicated(cfg, progress)
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
        "attribute", "kind", "ce_given_identity", "hardness", "transferred_accuracy",
        "transferred_error", "dedicated_accuracy", "transfer_gain", "identity_test_accuracy",
        "n_train", "n_test",
    ]
    return table[columns].sort_values(
        ["ce_given_identity", "hardness"], ascending=[True, False], kind="stable"
    ).reset_index(drop=True)


def run_training_size_curve(cfg: NCEConfig, progress: bool = True) -> pd.DataFrame:
    """Accuracy versus training-set size, dedicated versus transferred (Fig. 5).

    For each size ``n`` in ``cfg.train_sizes`` (nested random subsets of the training images):
    a dedicated network trained from scratch on ``n`` attribute labels, against a linear SVM on
    ``n`` attribute labels over the frozen features of the identity network (trained once, on
    the identity labels of the whole training set: identity labels are the plentiful ones, as
    the paper's recognition network was trained on other data). The dedicated networks get
    ``epochs * n_train / n`` epochs, so every size sees the same number of gradient steps.

    Without ``cfg.curve_attributes`` the attributes are the most transferable from identity
    (lowest ``H(attribute | identity)``, ties broken by the higher entropy) and the least.

    Returns
    -------
    DataFrame
        One row per (attribute, n, method) with ``accuracy``; ``method`` is "dedicated" or
        "transferred". Attributes keep their order (most transferable first by default).
    """
    ds = nce_dataset(cfg)
    train_idx, test_idx = split_indices(cfg)
    if cfg.curve_attributes is None:
        identity = run_identity_transfer(cfg, progress)
        attributes = [identity["attribute"].iloc[0], identity["attribute"].iloc[-1]]
    else:
        attributes = list(cfg.curve_attributes)
    sizes = sorted({min(int(n), train_idx.size) for n in cfg.train_sizes})
    order = np.random.default_rng(cfg.seed + 2).permutation(train_idx)
    store = _store(cfg, "training-size", ("attribute", "n", "method"))
    todo = [
        (a, n) for a in attributes for n in sizes
        if not all(store.has({"attribute": a, "n": n, "method": m}) for m in ("dedicated", "transferred"))
    ]
    if todo:
        identity_net = _network(
            cfg, _identity(cfg), train_idx, test_idx, cfg.identity_epochs, progress
        )
    for attribute, n in tqdm(todo, desc="training-size curve", disable=not progress):
        subset = np.sort(order[:n])
        epochs = max(cfg.epochs, round(cfg.epochs * train_idx.size / n))
        dedicated = _network(cfg, attribute, subset, test_idx, epochs, progress)
        rows = np.searchsorted(train_idx, subset)  # train_idx is sorted
        subset_net = dataclasses.replace(
            identity_net, train_features=identity_net.train_features[rows]
        )
        head = _heads(subset_net, ds, [attribute], subset, test_idx, cfg.head_method)
        accuracies = {
            "dedicated": float(np.mean(dedicated.test_probs.argmax(axis=1) == dedicated.test_labels)),
            "transferred": float(head.loc[attribute, "accuracy"]),
        }
        for method, accuracy in accuracies.items():
            store.append({"attribute": attribute, "n": n, "method": method, "accuracy": accuracy,
                          "epochs": epochs if method == "dedicated" else 0})
    table = store.table()
    table = table[table["attribute"].isin(attributes) & table["n"].isin(sizes)]
    rank = table["attribute"].map({a: i for i, a in enumerate(attributes)})
    return table.assign(_rank=rank).sort_values(["_rank", "method", "n"], kind="stable").drop(
        columns="_rank").reset_index(drop=True)


# ------------------------------------------------------------------------------------------------
# Summaries
# ------------------------------------------------------------------------------------------------


def correlation_summary(
    table: pd.DataFrame, x: str, y: str, by: str | None = None
) -> pd.DataFrame:
    """Pearson correlation and least-squares line of ``y`` on ``x``, per group.

    Parameters
    ----------
    table : DataFrame
    x, y : str
        Columns (e.g. ``"conditional_entropy"`` and ``"test_error"``).
    by : str or None
        Group column (e.g. ``"source"``); None summarises the whole table.

    Returns
    -------
    DataFrame
        One row per group: ``n, r, p_value, slope, intercept`` (from
        :func:`transferlib.evaluation.linear_fit_with_ci`).
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
    body["Average (all)"] = [np.nan, table["dedicated_accuracy"].mean(), table["transferred_accuracy"].mean()]
    body.index = ["CE (decreasing transferability)", "Dedicated network", "Transfer (identity + head)"]
    return body
