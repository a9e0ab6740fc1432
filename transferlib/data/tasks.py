"""Target-task constructors of the four papers, deterministic in ``seed``.

Every constructor returns a list of :class:`~transferlib.data.dataset.TaskSpec`
(row indices, classes and parameters; no pixels), which experiments iterate, use as
cache keys (:meth:`TaskSpec.key`) and turn into training data with
:func:`~transferlib.data.dataset.make_task_data`.

* Nguyen et al. (2020), LEEP: :func:`random_class_subsets` (§5.1),
  :func:`small_balanced_tasks` (§5.2), :func:`imbalanced_binary_tasks` (§5.3),
  :func:`few_shot_episodes` (§5.4) and :func:`class_split` (source classes disjoint
  from target classes, the CIFAR-10 -> CIFAR-100 analogue).
* Tran et al. (2019), NCE: :func:`attribute_tasks` (§5.1), :func:`trivial_task`
  (hardness, §4), :func:`identity_task` (identity -> attributes, §5.2).
* Bao et al. (2019), H-score: :func:`k_class_tasks`, :func:`multi_task_set` (task
  selection, higher-order and pixel-wise transfer on one set of images).
* Bhattacharjee et al. (2020), P2L: :func:`p2l_partition` (the four parts of §4.1),
  :func:`p2l_domains` (source domains of very different sizes, each with its target) and
  :func:`p2l_targets` (small user-like targets, about 200 images of 2-60 classes).

Impossible requests (more classes than exist, more examples per class than a class
has) raise :class:`ValueError` with the numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from transferlib.data.dataset import CONSTANT, MASK, ImageDataset, TaskSpec
from transferlib.data.glyph_tables import CHARACTERS

__all__ = [
    "attribute_tasks",
    "class_split",
    "few_shot_episodes",
    "identity_task",
    "imbalanced_binary_tasks",
    "k_class_tasks",
    "multi_task_set",
    "p2l_domains",
    "p2l_partition",
    "p2l_targets",
    "random_class_subsets",
    "select_rows",
    "small_balanced_tasks",
    "trivial_task",
]


def _target(dataset: ImageDataset, target: str | None) -> str:
    target = dataset.metadata.get("default_target", "label") if target is None else target
    dataset.column(target)  # raises with the valid names
    return target


def select_rows(dataset: ImageDataset, where: Mapping[str, Sequence] | None) -> np.ndarray:
    """Boolean row mask: every column in ``where`` takes one of the listed values.

    Values may be codes or class names (``{"script": ["greek_lower"]}``).
    """
    keep = np.ones(len(dataset), dtype=bool)
    for column, values in (where or {}).items():
        names = dataset.label_names.get(column, [])
        codes = []
        for value in values:
            if isinstance(value, str):
                if value not in names:
                    raise ValueError(f"{column!r} has no class {value!r}; valid: {names}")
                codes.append(names.index(value))
            else:
                codes.append(int(value))
        keep &= np.isin(dataset.column(column), codes)
    return keep


def _pool(
    dataset: ImageDataset,
    target: str,
    classes: Sequence[int] | None,
    rows: np.ndarray,
    min_count: int = 1,
) -> np.ndarray:
    """Classes (from ``classes`` or all) with at least ``min_count`` of ``rows``."""
    column = dataset.column(target)
    counts = np.bincount(column[rows], minlength=int(column.max()) + 1)
    pool = np.flatnonzero(counts) if classes is None else np.asarray(classes, dtype=np.int64)
    return pool[counts[pool] >= min_count]


def _rows_of(column: np.ndarray, rows: np.ndarray, classes: np.ndarray) -> np.ndarray:
    return rows[np.isin(column[rows], classes)]


def _check_count(what: str, wanted: int, available: int, detail: str) -> None:
    if wanted > available:
        raise ValueError(f"{what}: asked for {wanted} but only {available} {detail}")


def _per_class_sample(
    rng: np.random.Generator,
    column: np.ndarray,
    rows: np.ndarray,
    classes: np.ndarray,
    counts: Sequence[int],
) -> np.ndarray:
    """``counts[k]`` random rows of class ``classes[k]`` (without replacement), sorted."""
    picked = []
    for cls, count in zip(classes, counts):  # a handful of classes per task
        members = rows[column[rows] == cls]
        _check_count(f"class {cls}", int(count), members.size, "examples in the split")
        picked.append(rng.choice(members, size=int(count), replace=False))
    return np.sort(np.concatenate(picked))


def _spec(
    name: str,
    target: str,
    kind: str,
    classes: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    dataset: ImageDataset,
    **params,
) -> TaskSpec:
    return TaskSpec(
        name=name,
        target=target,
        kind=kind,
        classes=tuple(int(c) for c in classes),
        train_indices=np.asarray(train, dtype=np.int64),
        test_indices=np.asarray(test, dtype=np.int64),
        params={"dataset": dataset.name, **params},
    )


def _splits(
    dataset: ImageDataset, train_split: str, test_split: str
) -> tuple[np.ndarray, np.ndarray]:
    for split in (train_split, test_split):
        if split not in dataset.splits:
            raise ValueError(
                f"{dataset.name} has no split {split!r}; valid: {list(dataset.splits)}"
            )
    return np.asarray(dataset.splits[train_split]), np.asarray(dataset.splits[test_split])


# --------------------------------------------------------------------------- LEEP
def random_class_subsets(
    dataset: ImageDataset,
    n_tasks: int = 200,
    *,
    target: str | None = None,
    min_classes: int = 2,
    max_classes: int = 100,
    classes: Sequence[int] | None = None,
    seed: int = 0,
) -> list[TaskSpec]:
    """LEEP §5.1: tasks on a random subset of classes, subset size uniform in [min, max].

    Each task keeps all training (and all test) examples of its classes.
    ``classes`` restricts the pool (e.g. the target side of :func:`class_split`).
    """
    target = _target(dataset, target)
    train, test = _splits(dataset, "train", "test")
    pool = _pool(dataset, target, classes, train)
    if not 1 <= min_classes <= max_classes:
        raise ValueError(f"need 1 <= min_classes <= max_classes, got {min_classes}, {max_classes}")
    _check_count(
        "random_class_subsets max_classes",
        max_classes,
        pool.size,
        f"classes of {target!r} are available",
    )
    rng = np.random.default_rng(seed)
    column = dataset.column(target)
    specs = []
    for i in range(n_tasks):
        k = int(rng.integers(min_classes, max_classes + 1))
        chosen = np.sort(rng.choice(pool, size=k, replace=False))
        specs.append(
            _spec(
                f"subset-{i:03d}",
                target,
                "random_subset",
                chosen,
                _rows_of(column, train, chosen),
                _rows_of(column, test, chosen),
                dataset,
                seed=seed,
                n_classes=k,
            )
        )
    return specs


def small_balanced_tasks(
    dataset: ImageDataset,
    n_tasks: int = 200,
    *,
    target: str | None = None,
    n_classes: int = 5,
    per_class: int = 50,
    classes: Sequence[int] | None = None,
    seed: int = 0,
) -> list[TaskSpec]:
    """LEEP §5.2: ``n_classes`` random classes with ``per_class`` random training examples each.

    The paper uses 5 x 50 for CIFAR-100 and 4 x 30 for Fashion-MNIST. Test: all test
    examples of the chosen classes.
    """
    target = _target(dataset, target)
    train, test = _splits(dataset, "train", "test")
    pool = _pool(dataset, target, classes, train, min_count=per_class)
    _check_count(
        f"small_balanced_tasks: {n_classes} classes with >= {per_class} training examples",
        n_classes,
        pool.size,
        "classes have that many",
    )
    rng = np.random.default_rng(seed)
    column = dataset.column(target)
    specs = []
    for i in range(n_tasks):
        chosen = np.sort(rng.choice(pool, size=n_classes, replace=False))
        rows = _per_class_sample(rng, column, train, chosen, [per_class] * n_classes)
        specs.append(
            _spec(
                f"balanced-{i:03d}",
                target,
                "small_balanced",
                chosen,
                rows,
                _rows_of(column, test, chosen),
                dataset,
                seed=seed,
                per_class=per_class,
            )
        )
    return specs


def imbalanced_binary_tasks(
    dataset: ImageDataset,
    n_tasks: int = 200,
    *,
    target: str | None = None,
    minority_range: tuple[int, int] = (30, 60),
    ratio: int = 5,
    classes: Sequence[int] | None = None,
    seed: int = 0,
) -> list[TaskSpec]:
    """LEEP §5.3: two random classes, minority size uniform in ``minority_range``, majority
    ``ratio`` times larger.

    ``classes`` of each spec is ``(majority, minority)``, so the minority class has code 1
    (the positive class for F1). Test: all test examples of both classes.
    """
    target = _target(dataset, target)
    train, test = _splits(dataset, "train", "test")
    low, high = minority_range
    if not 1 <= low <= high or ratio < 1:
        raise ValueError(
            f"need 1 <= minority_range[0] <= minority_range[1] and ratio >= 1, "
            f"got {minority_range}, {ratio}"
        )
    pool = _pool(dataset, target, classes, train, min_count=ratio * high)
    _check_count(
        f"imbalanced_binary_tasks: 2 classes with >= {ratio * high} training "
        "examples (ratio x largest minority)",
        2,
        pool.size,
        "classes have that many",
    )
    rng = np.random.default_rng(seed)
    column = dataset.column(target)
    specs = []
    for i in range(n_tasks):
        majority, minority = rng.choice(pool, size=2, replace=False)
        m = int(rng.integers(low, high + 1))
        chosen = np.array([majority, minority])
        rows = _per_class_sample(rng, column, train, chosen, [ratio * m, m])
        specs.append(
            _spec(
                f"imbalanced-{i:03d}",
                target,
                "imbalanced_binary",
                chosen,
                rows,
                _rows_of(column, test, chosen),
                dataset,
                seed=seed,
                minority_size=m,
                majority_size=ratio * m,
            )
        )
    return specs


def few_shot_episodes(
    dataset: ImageDataset,
    n_episodes: int = 200,
    *,
    target: str | None = None,
    n_way: int = 5,
    n_support: int = 50,
    n_query: int | None = None,
    classes: Sequence[int] | None = None,
    split: str = "test",
    seed: int = 0,
) -> list[TaskSpec]:
    """LEEP §5.4: ``n_way`` random classes, ``n_support`` examples per class as the support
    (training) set, the remaining examples of those classes (or ``n_query`` per class) as
    the query (test) set, all drawn from ``split`` (the paper uses CIFAR-100's test set).

    Pass the held-out classes of :func:`class_split` as ``classes`` so that episodes use
    classes no source model saw.
    """
    target = _target(dataset, target)
    rows, _ = _splits(dataset, split, split)
    need = n_support + (1 if n_query is None else n_query)
    pool = _pool(dataset, target, classes, rows, min_count=need)
    _check_count(
        f"few_shot_episodes: {n_way} classes with >= {need} examples in {split!r}",
        n_way,
        pool.size,
        "classes have that many",
    )
    rng = np.random.default_rng(seed)
    column = dataset.column(target)
    specs = []
    for i in range(n_episodes):
        chosen = np.sort(rng.choice(pool, size=n_way, replace=False))
        support = _per_class_sample(rng, column, rows, chosen, [n_support] * n_way)
        rest = np.setdiff1d(_rows_of(column, rows, chosen), support)
        query = (
            rest
            if n_query is None
            else _per_class_sample(rng, column, rest, chosen, [n_query] * n_way)
        )
        specs.append(
            _spec(
                f"episode-{i:03d}",
                target,
                "few_shot",
                chosen,
                support,
                query,
                dataset,
                seed=seed,
                n_way=n_way,
                n_support=n_support,
                split=split,
            )
        )
    return specs


def class_split(
    dataset: ImageDataset, n_source_classes: int, *, target: str | None = None, seed: int = 0
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Split the classes of ``target`` at random into disjoint source and target sets.

    A source model trained on the first set never sees the second (the analogue of
    training on CIFAR-10 and transferring to CIFAR-100).
    """
    target = _target(dataset, target)
    pool = np.unique(dataset.column(target))
    if not 1 <= n_source_classes < pool.size:
        raise ValueError(
            f"class_split: n_source_classes must be in [1, {pool.size - 1}] for "
            f"{pool.size} classes of {target!r}, got {n_source_classes}"
        )
    order = np.random.default_rng(seed).permutation(pool)
    return (
        tuple(int(c) for c in np.sort(order[:n_source_classes])),
        tuple(int(c) for c in np.sort(order[n_source_classes:])),
    )


# --------------------------------------------------------------------------- NCE
def attribute_tasks(
    dataset: ImageDataset, attributes: Sequence[str] | None = None
) -> list[TaskSpec]:
    """Tran et al. §5.1: one binary task per attribute, on the dataset's train/test split."""
    names = dataset.attributes if attributes is None else list(attributes)
    unknown = [a for a in names if a not in dataset.attribute_kinds]
    if unknown:
        raise ValueError(f"unknown attributes {unknown}; valid: {dataset.attributes}")
    train, test = _splits(dataset, "train", "test")
    return [
        _spec(
            f"attr-{a}",
            a,
            "attribute",
            np.array([0, 1]),
            train,
            test,
            dataset,
            attribute_kind=dataset.attribute_kinds[a],
        )
        for a in names
    ]


def trivial_task(dataset: ImageDataset) -> TaskSpec:
    """Tran et al. §4: the trivial task (one constant label), whose CE gives hardness H(Z|C)."""
    train, test = _splits(dataset, "train", "test")
    return _spec("trivial", CONSTANT, "trivial", np.array([0]), train, test, dataset)


def identity_task(dataset: ImageDataset) -> TaskSpec:
    """Tran et al. §5.2: the identity label (CelebA identity; Glyphs character)."""
    target = dataset.metadata.get("identity_column", "label")
    train, test = _splits(dataset, "train", "test")
    return _spec(
        f"identity-{target}",
        target,
        "identity",
        np.unique(dataset.column(target)),
        train,
        test,
        dataset,
    )


# --------------------------------------------------------------------------- H-score
def k_class_tasks(
    dataset: ImageDataset,
    ks: Sequence[int] = (3, 5, 10, 20),
    n_tasks_per_k: int = 10,
    *,
    target: str | None = None,
    per_class: int | None = None,
    classes: Sequence[int] | None = None,
    seed: int = 0,
) -> list[TaskSpec]:
    """Bao et al.: target tasks with ``k`` random classes for every ``k`` in ``ks``.

    All training examples of the chosen classes, or ``per_class`` random ones each.
    """
    target = _target(dataset, target)
    train, test = _splits(dataset, "train", "test")
    pool = _pool(dataset, target, classes, train, min_count=per_class or 1)
    _check_count(
        "k_class_tasks: largest k", max(ks), pool.size, f"classes of {target!r} are available"
    )
    rng = np.random.default_rng(seed)
    column = dataset.column(target)
    specs = []
    for k in ks:
        for i in range(n_tasks_per_k):
            chosen = np.sort(rng.choice(pool, size=k, replace=False))
            rows = (
                _rows_of(column, train, chosen)
                if per_class is None
                else _per_class_sample(rng, column, train, chosen, [per_class] * k)
            )
            specs.append(
                _spec(
                    f"k{k:02d}-{i:03d}",
                    target,
                    "k_class",
                    chosen,
                    rows,
                    _rows_of(column, test, chosen),
                    dataset,
                    seed=seed,
                    k=k,
                    per_class=per_class,
                )
            )
    return specs


GLYPHS_TASK_SET = (
    "char",
    "font_family",
    "style",
    "case",
    "script",
    "colour",
    "size_bucket",
    "position",
    MASK,
)


def multi_task_set(dataset: ImageDataset, targets: Sequence[str] | None = None) -> list[TaskSpec]:
    """Bao et al. (task selection, higher-order transfer): several tasks on the same images.

    Default for Glyphs: character, font family, style (bold/italic), case, script, colour,
    size, position, and the per-pixel foreground mask (:data:`MASK`, kind ``"pixel"``).
    Other datasets: every factor column (plus the mask where there is one).
    """
    if targets is None:
        targets = [
            t
            for t in GLYPHS_TASK_SET
            if t in dataset.labels.columns or (t == MASK and dataset.masks is not None)
        ]
        if dataset.name != "glyphs":
            targets = dataset.factors + ([MASK] if dataset.masks is not None else [])
    train, test = _splits(dataset, "train", "test")
    specs = []
    for t in targets:
        if t == MASK:
            if dataset.masks is None:
                raise ValueError(f"{dataset.name} has no masks, so no {MASK!r} task")
            specs.append(
                _spec(f"task-{MASK}", MASK, "pixel", np.array([0, 1]), train, test, dataset)
            )
        else:
            specs.append(
                _spec(
                    f"task-{t}", t, "multi_task", np.unique(dataset.column(t)), train, test, dataset
                )
            )
    return specs


# --------------------------------------------------------------------------- P2L
#: Source domains of P2L on Glyphs: one per value (or group of values) of the dataset's
#: hierarchies, as the paper cut ImageNet-22K along its concept hierarchies (§4.1). Script
#: domains have disjoint class sets (like "animal" and "food"); case, font-family and style
#: domains draw the same characters differently; ``general`` takes every second character of
#: every script in every face, a broad standard source like ImageNet-1K (a subset of the
#: classes of ImageNet-22K, across its hierarchies).
GLYPHS_DOMAINS: dict[str, dict[str, list[str]]] = {
    "latin_upper": {"script": ["latin_upper"]},
    "latin_lower": {"script": ["latin_lower"]},
    "greek_upper": {"script": ["greek_upper"]},
    "greek_lower": {"script": ["greek_lower"]},
    "digit": {"script": ["digit"]},
    "symbol": {"script": ["symbol"]},
    "upper_case": {"case": ["upper"]},
    "lower_case": {"case": ["lower"]},
    "dejavu_sans": {"font_family": ["dejavu_sans"]},
    "dejavu_serif": {"font_family": ["dejavu_serif"]},
    "dejavu_mono": {"font_family": ["dejavu_mono"]},
    "stix": {"font_family": ["stix"]},
    "computer_modern": {"font_family": ["computer_modern"]},
    "regular": {"style": ["regular"]},
    "bold": {"style": ["bold", "bold_italic"]},
    "italic": {"style": ["italic", "bold_italic"]},
    "general": {"char": list(CHARACTERS[::2])},
}

#: The four parts of every P2L domain (§4.1), in partition order.
P2L_PARTS = ("source_train", "source_validate", "target_train", "target_validate")


def p2l_partition(
    dataset: ImageDataset,
    parts: Sequence[float] = (0.25, 0.25, 0.25, 0.25),
    *,
    target: str | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Part (0-3, :data:`P2L_PARTS`) of every row: the same shares of every class.

    P2L §4.1 splits each domain into four equal partitions: train the source, validate it,
    draw the target from the third, validate the target on the fourth. Partitioning the whole
    dataset once, class by class, and letting every domain take its rows from the parts keeps
    this true for overlapping domains too: no source network ever trains on an image that any
    target trains or is validated on. ``parts`` are the four shares (the paper's: equal).
    """
    shares = np.asarray(parts, dtype=np.float64)
    if shares.shape != (4,) or (shares <= 0).any() or abs(shares.sum() - 1) > 1e-9:
        raise ValueError(f"parts must be four positive shares summing to 1, got {parts}")
    target = _target(dataset, target)
    labels = dataset.column(target)
    order = np.lexsort((np.random.default_rng(seed).random(labels.size), labels))
    counts = np.bincount(labels)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(labels.size, dtype=np.int64)
    rank[order] = np.arange(labels.size) - np.repeat(starts, counts)
    position = (rank + 0.5) / np.maximum(counts[labels], 1)
    return np.searchsorted(np.cumsum(shares)[:-1], position, side="right")


def _sample(rng: np.random.Generator, rows: np.ndarray, n: int | None) -> np.ndarray:
    if n is None or n >= rows.size:
        return rows
    return np.sort(rng.choice(rows, size=n, replace=False))


def p2l_domains(
    dataset: ImageDataset,
    domains: Mapping[str, Mapping[str, Sequence]] | None = None,
    *,
    parts: Sequence[float] = (0.25, 0.25, 0.25, 0.25),
    min_fraction: float = 1 / 16,
    min_per_class: int = 4,
    fractions: Mapping[str, float] | None = None,
    target_fraction: float = 0.1,
    max_validate: int | None = None,
    seed: int = 0,
) -> list[TaskSpec]:
    """P2L source domains and their targets, split into four parts as in §4.1.

    Each domain is the set of rows matching a filter (:func:`select_rows`; default
    :data:`GLYPHS_DOMAINS`, ``{}`` for the whole dataset), labelled by the default target
    (the character on Glyphs). It gives two specs:

    * ``source-<name>`` (kind ``"p2l_source"``): trains on a fraction of the domain's rows
      in part 0, validates on part 1. The fractions form a geometric ladder from 1 down to
      ``min_fraction``, assigned to the domains in a seeded random order, so that sizes span
      over an order of magnitude beyond what the domains' own sizes differ by, independently
      of what a domain contains (P2L's log-size term needs that spread); no source gets fewer
      than ``min_per_class`` images per class. ``fractions`` fixes the fraction of some
      domains instead (e.g. a standard source used whole); the others share the ladder.
    * ``target-<name>`` (kind ``"p2l_target"``): trains on ``target_fraction`` of the domain's
      rows in part 2 (the paper's one-tenth), validates on part 3.

    ``parts`` are the shares of the four parts (:func:`p2l_partition`; the paper's are
    equal). ``max_validate`` caps every validation set (a random subset). ``params`` carry
    ``domain``, ``part`` (``"source"``/``"target"``), ``size`` (training images),
    ``fraction`` and ``where``. Sources come first, then targets, each in domain order.
    """
    domains = GLYPHS_DOMAINS if domains is None else domains
    if not domains:
        raise ValueError("p2l_domains: domains is empty")
    if not 0 < min_fraction <= 1:
        raise ValueError(f"min_fraction must be in (0, 1], got {min_fraction}")
    if not 0 < target_fraction <= 1:
        raise ValueError(f"target_fraction must be in (0, 1], got {target_fraction}")
    if min_per_class < 1:
        raise ValueError(f"min_per_class must be >= 1, got {min_per_class}")
    if max_validate is not None and max_validate < 1:
        raise ValueError(f"max_validate must be >= 1 or None, got {max_validate}")
    target = _target(dataset, None)
    column = dataset.column(target)
    part = p2l_partition(dataset, parts, seed=seed)
    rng = np.random.default_rng(seed)
    fixed = dict(fractions or {})
    if not set(fixed) <= set(domains) or not all(0 < f <= 1 for f in fixed.values()):
        raise ValueError(f"fractions must map domains to values in (0, 1], got {fixed}")
    ladder = iter(rng.permutation(np.geomspace(1.0, min_fraction, len(domains) - len(fixed))))
    sources, targets = [], []
    for name, where in domains.items():
        fraction = fixed[name] if name in fixed else next(ladder)
        keep = select_rows(dataset, where)
        rows = [np.flatnonzero(keep & (part == p)) for p in range(4)]
        if any(r.size == 0 for r in rows):
            raise ValueError(
                f"p2l_domains: domain {name!r} has no rows in some part; "
                f"sizes {[r.size for r in rows]}"
            )
        classes = np.unique(column[rows[0]])
        n_source = min(
            rows[0].size, max(round(fraction * rows[0].size), min_per_class * classes.size)
        )
        source_rows = _sample(rng, rows[0], n_source)
        target_rows = _sample(rng, rows[2], max(1, round(target_fraction * rows[2].size)))
        params = {"domain": name, "where": {k: list(v) for k, v in where.items()}, "seed": seed}
        sources.append(
            _spec(
                f"source-{name}",
                target,
                "p2l_source",
                classes,
                source_rows,
                _sample(rng, _rows_of(column, rows[1], classes), max_validate),
                dataset,
                part="source",
                size=int(source_rows.size),
                fraction=float(n_source / rows[0].size),
                **params,
            )
        )
        target_classes = np.unique(column[target_rows])
        targets.append(
            _spec(
                f"target-{name}",
                target,
                "p2l_target",
                target_classes,
                target_rows,
                _sample(rng, _rows_of(column, rows[3], target_classes), max_validate),
                dataset,
                part="target",
                size=int(target_rows.size),
                fraction=float(target_fraction),
                **params,
            )
        )
    return sources + targets


def p2l_targets(
    dataset: ImageDataset,
    n_targets: int = 20,
    *,
    slices: Mapping[str, Mapping[str, Sequence]] | None = None,
    parts: Sequence[float] = (0.25, 0.25, 0.25, 0.25),
    class_range: tuple[int, int] = (2, 60),
    n_images: int = 200,
    validate_fraction: float = 0.25,
    seed: int = 0,
) -> list[TaskSpec]:
    """Small user-like targets (P2L §4.3.3): about ``n_images`` images of 2 to 60 classes.

    The paper's 71 user tasks had 204 training images on average, 5.2 classes (2 to 60) and
    an 80/20 split. Each target picks a random slice (a filter of :func:`select_rows`; default
    the whole dataset) and a number of classes ``K`` with probability proportional to
    ``1 / K**2`` on ``class_range`` (mean 5.9 on 2-60, close to the survey's 5.2), capped by the
    classes the slice offers. It trains on ``n_images // K`` images per class (fewer where a
    class has fewer) from part 2 of :func:`p2l_partition` (with shares ``parts``, as the
    sources' :func:`p2l_domains`) and validates on
    ``validate_fraction`` as many images of the same classes from part 3, so no source of
    :func:`p2l_domains` (which train on part 0) has seen them.
    """
    slices = {"all": {}} if slices is None else slices
    low, high = class_range
    if not 2 <= low <= high:
        raise ValueError(f"class_range must satisfy 2 <= low <= high, got {class_range}")
    if n_images < 2 * low:
        raise ValueError(
            f"p2l_targets: n_images ({n_images}) must give at least two images "
            f"per class for {low} classes"
        )
    if not 0 < validate_fraction <= 1:
        raise ValueError(f"validate_fraction must be in (0, 1], got {validate_fraction}")
    target = _target(dataset, None)
    column = dataset.column(target)
    part = p2l_partition(dataset, parts, seed=seed)
    rng = np.random.default_rng(seed)
    names = list(slices)
    ks = np.arange(low, high + 1)
    k_probability = 1.0 / ks**2 / np.sum(1.0 / ks**2)
    specs = []
    for i in range(n_targets):
        name = names[int(rng.integers(len(names)))]
        keep = select_rows(dataset, slices[name])
        train, test = np.flatnonzero(keep & (part == 2)), np.flatnonzero(keep & (part == 3))
        pool = _pool(dataset, target, None, train, min_count=2)
        _check_count(
            f"p2l_targets: slice {name!r}", low, pool.size, "classes have two images in partition 2"
        )
        n_classes = int(min(rng.choice(ks, p=k_probability), pool.size, n_images // 2))
        chosen = np.sort(rng.choice(pool, size=n_classes, replace=False))
        available = np.bincount(column[train], minlength=int(column.max()) + 1)[chosen]
        rows = _per_class_sample(
            rng, column, train, chosen, np.minimum(n_images // n_classes, available)
        )
        n_test = max(n_classes, round(validate_fraction * rows.size))
        specs.append(
            _spec(
                f"user-{i:03d}",
                target,
                "p2l_user",
                chosen,
                rows,
                _sample(rng, _rows_of(column, test, chosen), n_test),
                dataset,
                seed=seed,
                slice=name,
                n_images=int(rows.size),
            )
        )
    return specs
