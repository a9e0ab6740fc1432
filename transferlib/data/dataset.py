"""The dataset and task types shared by every loader, constructor and experiment.

An :class:`ImageDataset` holds images and a table of labels, one column per task on
those images. A :class:`TaskSpec` names one classification task on a dataset (which
column, which classes, which train and test rows); :func:`make_task_data` turns it
into the pair of :class:`TaskData` that training consumes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from transferlib.cache import fingerprint_arrays

__all__ = [
    "CONSTANT",
    "MASK",
    "ImageDataset",
    "TaskData",
    "TaskSpec",
    "as_task",
    "make_task_data",
    "stratified_split",
]

#: Target name of the trivial task: every example has the same label (Tran et al., 2019, §4).
CONSTANT = "constant"
#: Target name of the per-pixel foreground task (datasets with masks only).
MASK = "mask"


@dataclass
class ImageDataset:
    """Images with one label column per task.

    Attributes
    ----------
    name : str
        Registry name (``"glyphs"``, ``"cifar100"``, ...).
    images : array-like
        ``(N, C, H, W)`` uint8. Large real datasets hold a lazy array (``len``,
        ``.shape`` and fancy indexing that decodes to a uint8 array).
    labels : pandas.DataFrame
        One integer-coded column per task; row ``i`` describes image ``i``.
    splits : dict of str to numpy.ndarray
        Row indices of each split (``"train"``, ``"test"``, sometimes ``"valid"``).
    label_names : dict of str to list of str
        For each column, the class names in code order.
    attribute_kinds : dict of str to str
        Binary attribute columns and their kind (``"character"``, ``"font"``,
        ``"appearance"``, ``"annotation"``, ...).
    masks : numpy.ndarray or None
        ``(N, H, W)`` boolean foreground masks, where the dataset has them.
    metadata : dict
        Everything else (generation parameters, descriptions, source files). Tables
        with one row per image are listed in ``metadata["per_image_keys"]`` and follow
        :meth:`subset`.
    """

    name: str
    images: Any
    labels: pd.DataFrame
    splits: dict[str, np.ndarray]
    label_names: dict[str, list[str]]
    attribute_kinds: dict[str, str] = field(default_factory=dict)
    masks: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.images)
        if len(self.labels) != n:
            raise ValueError(f"{self.name}: {n} images but {len(self.labels)} label rows")
        if self.masks is not None and len(self.masks) != n:
            raise ValueError(f"{self.name}: {n} images but {len(self.masks)} masks")
        unknown = set(self.attribute_kinds) - set(self.labels.columns)
        if unknown:
            raise ValueError(f"{self.name}: attribute kinds for missing columns {sorted(unknown)}")
        for split, index in self.splits.items():
            index = np.asarray(index)
            if index.size and (index.min() < 0 or index.max() >= n):
                raise ValueError(f"{self.name}: split {split!r} has indices outside [0, {n})")

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        splits = ", ".join(f"{k}={len(v)}" for k, v in self.splits.items())
        return (
            f"ImageDataset({self.name!r}, images={tuple(self.images.shape)}, "
            f"{len(self.attributes)} attributes, factors={self.factors}, {splits})"
        )

    @property
    def attributes(self) -> list[str]:
        """Binary attribute columns, in table order."""
        return [c for c in self.labels.columns if c in self.attribute_kinds]

    @property
    def factors(self) -> list[str]:
        """Multi-class label columns (everything that is not a binary attribute)."""
        return [c for c in self.labels.columns if c not in self.attribute_kinds]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return tuple(self.images.shape[1:])

    def column(self, target: str) -> np.ndarray:
        """Integer codes of one label column; unknown names list the valid ones."""
        if target not in self.labels.columns:
            raise ValueError(
                f"{self.name} has no label column {target!r}; valid: {list(self.labels.columns)}"
            )
        return self.labels[target].to_numpy()

    def subset(self, indices: Sequence[int] | np.ndarray) -> ImageDataset:
        """Rows ``indices`` as a new dataset; splits keep the rows they contain, renumbered."""
        indices = np.asarray(indices, dtype=np.int64)
        metadata = dict(self.metadata)
        for key in metadata.get("per_image_keys", ()):
            if metadata.get(key) is not None:
                metadata[key] = metadata[key].iloc[indices].reset_index(drop=True)
        position = np.full(len(self), -1, dtype=np.int64)
        position[indices] = np.arange(indices.size)
        splits = {}
        for split, rows in self.splits.items():
            kept = position[np.asarray(rows, dtype=np.int64)]
            splits[split] = np.sort(kept[kept >= 0])
        return ImageDataset(
            name=self.name,
            images=(
                self.images.take(indices)
                if hasattr(self.images, "take") and not isinstance(self.images, np.ndarray)
                else self.images[indices]
            ),
            labels=self.labels.iloc[indices].reset_index(drop=True),
            splits=splits,
            label_names=dict(self.label_names),
            attribute_kinds=dict(self.attribute_kinds),
            masks=None if self.masks is None else self.masks[indices],
            metadata=metadata,
        )


@dataclass(frozen=True)
class TaskData:
    """Images and integer labels of one task split, ready for training.

    ``labels`` is ``(n,)`` for classification and ``(n, H, W)`` for the per-pixel
    :data:`MASK` task.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    name: str = ""

    def __post_init__(self) -> None:
        if len(self.images) != len(self.labels):
            raise ValueError(
                f"task {self.name!r}: {len(self.images)} images but {len(self.labels)} labels"
            )
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise TypeError(
                f"task {self.name!r}: images must be (n, C, H, W) uint8, got "
                f"{self.images.dtype} with shape {self.images.shape}"
            )

    @property
    def num_classes(self) -> int:
        """Number of classes (length of ``class_names``)."""
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.labels)

    def fingerprint(self) -> str:
        """Content hash of images, labels and class names (for cache keys)."""
        names = np.array(self.class_names, dtype=str)
        return fingerprint_arrays(self.images, self.labels, names)


@dataclass(frozen=True)
class TaskSpec:
    """One task on a dataset, as returned by the constructors in :mod:`transferlib.data.tasks`.

    Attributes
    ----------
    name : str
        Unique, readable name (``"subset-017"``, ``"attr-uppercase"``).
    target : str
        Label column, :data:`CONSTANT` or :data:`MASK`.
    kind : str
        Constructor family (``"random_subset"``, ``"attribute"``, ``"few_shot"``, ...).
    classes : tuple
        Original label codes used, in the order of the new codes ``0..K-1``.
    train_indices, test_indices : numpy.ndarray
        Dataset rows of the two splits (for few-shot episodes: support and query).
    params : dict
        Everything else (seed, sizes, dataset name).
    """

    name: str
    target: str
    kind: str
    classes: tuple
    train_indices: np.ndarray
    test_indices: np.ndarray
    params: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        """Number of classes of the task."""
        return len(self.classes)

    def key(self) -> dict:
        """JSON-able description of the task (index sets by content hash), for cache keys."""
        return {
            "name": self.name,
            "target": self.target,
            "kind": self.kind,
            "classes": [int(c) for c in self.classes],
            "n_train": len(self.train_indices),
            "n_test": len(self.test_indices),
            "indices": fingerprint_arrays(
                np.asarray(self.train_indices, dtype=np.int64),
                np.asarray(self.test_indices, dtype=np.int64),
            ),
            "params": {k: v for k, v in self.params.items()},
        }


def _subsample(rows: np.ndarray, max_rows: int | None, seed: int) -> np.ndarray:
    if max_rows is None or len(rows) <= max_rows:
        return rows
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(rows, size=max_rows, replace=False))


def as_task(
    dataset: ImageDataset,
    target: str,
    classes: Sequence[int] | None = None,
    train_indices: np.ndarray | None = None,
    test_indices: np.ndarray | None = None,
    max_train: int | None = None,
    seed: int = 0,
    name: str | None = None,
) -> tuple[TaskData, TaskData]:
    """Train and test :class:`TaskData` for one label column.

    Parameters
    ----------
    dataset : ImageDataset
        Source of images and labels.
    target : str
        Label column, :data:`CONSTANT` (every label 0) or :data:`MASK` (per-pixel).
    classes : sequence of int, optional
        Original codes to keep, in the order of the new codes; rows with other labels
        are dropped. Default: every code of the column, in order.
    train_indices, test_indices : numpy.ndarray, optional
        Rows of each split; default ``dataset.splits["train"]`` / ``["test"]``.
    max_train : int, optional
        Keep at most this many training rows (uniformly at random, seeded).
    seed : int
        Seed of the ``max_train`` subsample.
    name : str, optional
        Task name stored in the returned data; default ``target``.

    Returns
    -------
    (TaskData, TaskData)
        Train and test data; labels recoded to ``0..K-1``.
    """
    name = target if name is None else name
    if train_indices is None:
        train_indices = dataset.splits["train"]
    if test_indices is None:
        test_indices = dataset.splits["test"]
    train_indices = np.asarray(train_indices, dtype=np.int64)
    test_indices = np.asarray(test_indices, dtype=np.int64)

    if target == CONSTANT:
        names = ("constant",)
        codes = np.zeros(len(dataset), dtype=np.int64)
        keep = np.ones(len(dataset), dtype=bool)
    elif target == MASK:
        if dataset.masks is None:
            raise ValueError(f"{dataset.name} has no masks, so no {MASK!r} task")
        names = ("background", "foreground")
        keep = np.ones(len(dataset), dtype=bool)
        codes = None
    else:
        column = dataset.column(target)
        all_names = dataset.label_names.get(target)
        if classes is None:
            classes = np.unique(column)
        classes = np.asarray(classes, dtype=np.int64)
        if classes.size == 0:
            raise ValueError(f"task {name!r}: empty class list")
        if np.unique(classes).size != classes.size:
            raise ValueError(f"task {name!r}: repeated classes {classes.tolist()}")
        lookup = np.full(max(int(column.max()), int(classes.max())) + 1, -1, dtype=np.int64)
        lookup[classes] = np.arange(classes.size)
        codes = lookup[column]
        keep = codes >= 0
        names = tuple(
            all_names[c] if all_names is not None and c < len(all_names) else str(c)
            for c in classes
        )

    train_rows = _subsample(train_indices[keep[train_indices]], max_train, seed)
    test_rows = test_indices[keep[test_indices]]
    if len(train_rows) == 0:
        raise ValueError(f"task {name!r}: no training rows with the requested classes")

    def build(rows: np.ndarray, split: str) -> TaskData:
        labels = dataset.masks[rows].astype(np.int64) if codes is None else codes[rows]
        return TaskData(np.asarray(dataset.images[rows]), labels, names, f"{name}/{split}")

    return build(train_rows, "train"), build(test_rows, "test")


def make_task_data(dataset: ImageDataset, spec: TaskSpec) -> tuple[TaskData, TaskData]:
    """Materialise a :class:`TaskSpec` on ``dataset`` as (train, test) :class:`TaskData`."""
    expected = spec.params.get("dataset")
    if expected is not None and expected != dataset.name:
        raise ValueError(f"task {spec.name!r} was built on {expected!r}, not {dataset.name!r}")
    classes = None if spec.target in (CONSTANT, MASK) else spec.classes
    return as_task(
        dataset,
        spec.target,
        classes=classes,
        train_indices=spec.train_indices,
        test_indices=spec.test_indices,
        name=spec.name,
    )


def stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int | Sequence[int] = 0
) -> dict[str, np.ndarray]:
    """Random split keeping ``round(count * test_fraction)`` rows of every class in "test".

    Parameters
    ----------
    labels : numpy.ndarray
        ``(N,)`` non-negative integer class codes.
    test_fraction : float
        In ``(0, 1)``.
    seed : int or sequence of int
        Seed of :func:`numpy.random.default_rng`.

    Returns
    -------
    dict
        ``{"train": rows, "test": rows}``, sorted row indices.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(labels.size), labels))
    counts = np.bincount(labels)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(labels.size, dtype=np.int64)
    rank[order] = np.arange(labels.size) - np.repeat(starts, counts)
    is_test = rank < np.round(counts * test_fraction)[labels]
    return {"train": np.flatnonzero(~is_test), "test": np.flatnonzero(is_test)}
