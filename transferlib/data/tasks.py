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
* Bhattacharjee et al. (2020), P2L: :func:`p2l_domains` (source domains of clearly
  different sizes) and :func:`p2l_targets` (small targets, about 250 images of 5 classes).

Impossible requests (more classes than exist, more examples per class than a class
has) raise :class:`ValueError` with the numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from transferlib.data.dataset import CONSTANT, MASK, ImageDataset, TaskSpec

__all__ = [
    "attribute_tasks", "class_split", "few_shot_episodes", "identity_task",
    "imbalanced_binary_tasks", "k_class_tasks", "multi_task_set", "p2l_domains", "p2l_targets",
    "random_class_subsets", "select_rows", "small_balanced_tasks", "trivial_task",
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


def _pool(dataset: ImageDataset, target: str, classes: Sequence[int] | None,
          rows: np.ndarray, min_count: int = 1) -> np.ndarray:
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


def _per_class_sample(rng: np.random.Generator, column: np.ndarray, rows: np.ndarray,
                      classes: np.ndarray, counts: Sequence[int]) -> np.ndarray:
    """``counts[k]`` random rows of class ``classes[k]`` (without replacement), sorted."""
    picked = []
    for cls, count in zip(classes, counts):  # a handful of classes per task
        members = rows[column[rows] == cls]
        _check_count(f"class {cls}", int(count), members.size, "examples in the split")
        picked.append(rng.choice(members, size=int(count), replace=False))
    return np.sort(np.concatenate(picked))


def _spec(name: str, target: str, kind: str, classes: np.ndarray, train: np.ndarray,
          test: np.ndarray, dataset: ImageDataset, **params) -> TaskSpec:
    return TaskSpec(name=name, target=target, kind=kind,
                    classes=tuple(int(c) for c in classes),
                    train_indices=np.asarray(train, dtype=np.int64),
                    test_indices=np.asarray(test, dtype=np.int64),
                    params={"dataset": dataset.name, **params})


def _splits(dataset: ImageDataset, train_split: str, test_split: str
            ) -> tuple[np.ndarray, np.ndarray]:
    for split in (train_split, test_split):
        if split not in dataset.splits:
            raise ValueError(f"{dataset.name} has no split {split!r}; valid: "
                             f"{list(dataset.splits)}")
    return np.asarray(dataset.splits[train_split]), np.asarray(dataset.splits[test_split])


# --------------------------------------------------------------------------- LEEP
def random_class_subsets(dataset: ImageDataset, n_tasks: int = 200, *, target: str | None = None,
                         min_classes: int = 2, max_classes: int = 100,
                         classes: Sequence[int] | None = None, seed: int = 0) -> list[TaskSpec]:
    """LEEP §5.1: tasks on a random subset of classes, subset size uniform in [min, max].

    Each task keeps all training (and all test) examples of its classes.
    ``classes`` restricts the pool (e.g. the target side of :func:`class_split`).
    """
    target = _target(dataset, target)
    train, test = _splits(dataset, "train", "test")
    pool = _pool(dataset, target, classes, train)
    if not 1 <= min_classes <= max_classes:
        raise ValueError(f"need 1 <= min_classes <= max_classes, got {min_classes}, "
                         f"{max_classes}")
    _check_count("random_class_subsets max_classes", max_classes, pool.size,
                 f"classes of {target!r} are available")
    rng = np.random.default_rng(seed)
    column = dataset.column(target)
    specs = []
    for i in range(n_tasks):
        k = int(rng.integers(min_classes, max_classes + 1))
        chosen = np.sort(rng.choice(pool, size=k, replace=False))
        specs.append(_spec(f"subset-{i:03d}", target, "random_subset", chosen,
                           _rows_of(column, train, chosen), _rows_of(column, test, chosen),
                           dataset, seed=seed, n_classes=k))
    return specs


def small_balanced_tasks(dataset: ImageDataset, n_tasks: int = 200, *,
                         target: str | None = None, n_classes: int = 5, per_class: int = 50,
                         classes: Sequence[int] | None = None, seed: int = 0
                         ) -> list[TaskSpec]:
    """LEEP §5.2: ``n_classes`` random classes with ``per_class`` random training examples each.

    The paper uses 5 x 50 for CIFAR-100 and 4 x 30 for Fashion-MNIST. Test: all test
    examples of the chosen classes.
    """
    target = _target(dataset, target)
    train, test = _splits(dataset, "train", "test")
    pool = _pool(dataset, target, classes, train, min_count=per_class)
    _check_count(f"small_balanced_tasks: {n_classes} classes with >= {per_class} training "
                 "examples", n_classes, pool.size, "classes have that many")
    rng = np.random.default_rng(seed)
    column = dataset.column(target)
    specs = []
    for i in range(n_tasks):
        chosen = np.sort(rng.choice(pool, size=n_classes, replace=False))
        rows = _per_class_sample(rng, column, train, chosen, [per_class] * n_classes)
        specs.append(_spec(f"balanced-{i:03d}", target, "small_balanced", chosen, rows,
                           _rows_of(column, test, chosen), dataset, seed=seed,
                           per_class=per_class))
    return specs


def imbalanced_binary_tasks(dataset: ImageDataset, n_tasks: int = 200, *,
                            target: str | None = None, minority_range: tuple[int, int] = (30, 60),
                            ratio: int = 5, classes: Sequence[int] | None = None, seed: int = 0
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
        raise ValueError(f"need 1 <= minority_range[0] <= minority_range[1] and ratio >= 1, "
                         f"got {minority_range}, {ratio}")
    pool = _pool(dataset, target, classes, train, min_count=ratio * high)
    _check_count(f"imbalanced_binary_tasks: 2 classes with >= {ratio * high} training "
                 "examples (ratio x largest minority)", 2, pool.size, "classes have that many")
    rng = np.random.default_rng(seed)
    column = dataset.column(target)
    specs = []
    for i in range(n_tasks):
        majority, minority = rng.choice(pool, size=2, replace=False)
        m = int(rng.integers(low, high + 1))
        chosen = np.array([majority, minority])
        rows = _per_class_sample(rng, column, train, chosen, [ratio * m, m])
        specs.append(_spec(f"imbalanced-{i:03d}", target, "imbalanced_binary", chosen, rows,
                           _rows_of(column, test, chosen), dataset, seed=seed,
                           minority_size=m, majority_size=ratio * m))
    return specs


def few_shot_episodes(dataset: ImageDataset, n_episodes: int = 200, *, target: str | None = None,
                      n_way: int = 5, n_support: int = 50, n_query: int | None = None,
                      classes: Sequence[int] | None = None, split: str = "test", seed: int = 0
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
    _check_count(f"few_shot_episodes: {n_way} classes with >= {need} examples in {split!r}",
                 n_way, pool.size, "classes have that many")
    rng = np.random.default_rng(seed)
    column = dataset.column(target)
    specs = []
    for i in range(n_episodes):
        chosen = np.sort(rng.choice(pool, size=n_way, replace=False))
        support = _per_class_sample(rng, column, rows, chosen, [n_support] * n_way)
        rest = np.setdiff1d(_rows_of(column, rows, chosen), support)
        query = rest if n_query is None else _per_class_sample(rng, column, rest, chosen,
                                                               [n_query] * n_way)
        specs.append(_spec(f"episode-{i:03d}", target, "few_shot", chosen, support, query,
                           dataset, seed=seed, n_way=n_way, n_support=n_support, split=split))
    return specs


def class_split(dataset: ImageDataset, n_source_classes: int, *, target: str | None = None,
                seed: int = 0) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Split the classes of ``target`` at random into disjoint source and target sets.

    A source model trained on the first set never sees the second (the analogue of
    training on CIFAR-10 and transferring to CIFAR-100).
    """
    target = _target(dataset, target)
    pool = np.unique(dataset.column(target))
    if not 1 <= n_source_classes < pool.size:
        raise ValueError(f"class_split: n_source_classes must be in [1, {pool.size - 1}] for "
                         f"{pool.size} classes of {target!r}, got {n_source_classes}")
    order = np.random.default_rng(seed).permutation(pool)
    return (tuple(int(c) for c in np.sort(order[:n_source_classes])),
            tuple(int(c) for c in np.sort(order[n_source_classes:])))


# --------------------------------------------------------------------------- NCE
def attribute_tasks(dataset: ImageDataset, attributes: Sequence[str] | None = None
                    ) -> list[TaskSpec]:
    """Tran et al. §5.1: one binary task per attribute, on the dataset's train/test split."""
    names = dataset.attributes if attributes is None else list(attributes)
    unknown = [a for a in names if a not in dataset.attribute_kinds]
    if unknown:
        raise ValueError(f"unknown attributes {unknown}; valid: {dataset.attributes}")
    train, test = _splits(dataset, "train", "test")
    return [_spec(f"attr-{a}", a, "attribute", np.array([0, 1]), train, test, dataset,
                  attribute_kind=dataset.attribute_kinds[a]) for a in names]


def trivial_task(dataset: ImageDataset) -> TaskSpec:
    """Tran et al. §4: the trivial task (one constant label), whose CE gives hardness H(Z|C)."""
    train, test = _splits(dataset, "train", "test")
    return _spec("trivial", CONSTANT, "trivial", np.array([0]), train, test, dataset)


def identity_task(dataset: ImageDataset) -> TaskSpec:
    """Tran et al. §5.2: the identity label (CelebA identity; Glyphs character)."""
    target = dataset.metadata.get("identity_column", "label")
    train, test = _splits(dataset, "train", "test")
    return _spec(f"identity-{target}", target, "identity", np.unique(dataset.column(target)),
                 train, test, dataset)


# --------------------------------------------------------------------------- H-score
def k_class_tasks(dataset: ImageDataset, ks: Sequence[int] = (3, 5, 10, 20),
                  n_tasks_per_k: int = 10, *, target: str | None = None,
                  per_class: int | None = None, classes: Sequence[int] | None = None,
                  seed: int = 0) -> list[TaskSpec]:
    """Bao et al.: target tasks with ``k`` random classes for every ``k`` in ``ks``.

    All training examples of the chosen classes, or ``per_class`` random ones each.
    """
    target = _target(dataset, target)
    train, test = _splits(dataset, "train", "test")
    pool = _pool(dataset, target, classes, train, min_count=per_class or 1)
    _check_count("k_class_tasks: largest k", max(ks), pool.size,
                 f"classes of {target!r} are available")
    rng = np.random.default_rng(seed)
    column = dataset.column(target)
    specs = []
    for k in ks:
        for i in range(n_tasks_per_k):
            chosen = np.sort(rng.choice(pool, size=k, replace=False))
            rows = (_rows_of(column, train, chosen) if per_class is None else
                    _per_class_sample(rng, column, train, chosen, [per_class] * k))
            specs.append(_spec(f"k{k:02d}-{i:03d}", target, "k_class", chosen, rows,
                               _rows_of(column, test, chosen), dataset, seed=seed, k=k,
                               per_class=per_class))
    return specs


GLYPHS_TASK_SET = ("char", "font_family", "style", "case", "script", "colour", "size_bucket",
                   "position", MASK)


def multi_task_set(dataset: ImageDataset, targets: Sequence[str] | None = None
                   ) -> list[TaskSpec]:
    """Bao et al. (task selection, higher-order transfer): several tasks on the same images.

    Default for Glyphs: character, font family, style (bold/italic), case, script, colour,
    size, position, and the per-pixel foreground mask (:data:`MASK`, kind ``"pixel"``).
    Other datasets: every factor column (plus the mask where there is one).
    """
    if targets is None:
        targets = [t for t in GLYPHS_TASK_SET if t in dataset.labels.columns
                   or (t == MASK and dataset.masks is not None)]
        if dataset.name != "glyphs":
            targets = dataset.factors + ([MASK] if dataset.masks is not None else [])
    train, test = _splits(dataset, "train", "test")
    specs = []
    for t in targets:
        if t == MASK:
            if dataset.masks is None:
                raise ValueError(f"{dataset.name} has no masks, so no {MASK!r} task")
            specs.append(_spec(f"task-{MASK}", MASK, "pixel", np.array([0, 1]), train, test,
                               dataset))
        else:
            specs.append(_spec(f"task-{t}", t, "multi_task", np.unique(dataset.column(t)),
                               train, test, dataset))
    return specs


# --------------------------------------------------------------------------- P2L
GLYPHS_DOMAINS: dict[str, dict[str, list[str]]] = {
    "latin_upper": {"script": ["latin_upper"]},
    "latin_lower": {"script": ["latin_lower"]},
    "greek": {"script": ["greek_upper", "greek_lower"]},
    "digits_symbols": {"script": ["digit", "symbol"]},
    "sans_faces": {"font_family": ["dejavu_sans", "dejavu_mono"]},
    "serif_faces": {"font_family": ["dejavu_serif", "stix"]},
    "computer_modern": {"font_family": ["computer_modern"]},
    "latin_merged": {"script": ["latin_upper", "latin_lower"]},
    "all_glyphs": {},
}


def p2l_domains(dataset: ImageDataset, digits: ImageDataset | None = None, *,
                domains: Mapping[str, Mapping[str, Sequence]] | None = None,
                min_fraction: float = 1 / 16, seed: int = 0) -> list[TaskSpec]:
    """P2L source domains of clearly different sizes.

    Each domain is the set of Glyphs images matching a filter (:func:`select_rows`) —
    by script, by font family, or merged (``latin_merged``, ``all_glyphs``) — labelled by
    character. A domain keeps a fraction of its training rows taken from a geometric
    ladder from 1 down to ``min_fraction``, assigned to domains in a seeded random order,
    so sizes vary over more than an order of magnitude (P2L's log-size term) independently
    of the kind of domain. With ``digits`` given, scikit-learn's digits (labelled by digit,
    all training rows) is one more domain; its specs carry ``params["dataset"] = "digits"``.

    ``params["size"]`` is the number of training images of each domain.
    """
    domains = GLYPHS_DOMAINS if domains is None else domains
    if not 0 < min_fraction <= 1:
        raise ValueError(f"min_fraction must be in (0, 1], got {min_fraction}")
    target = _target(dataset, None)
    train, test = _splits(dataset, "train", "test")
    rng = np.random.default_rng(seed)
    fractions = rng.permutation(np.geomspace(1.0, min_fraction, len(domains)))
    column = dataset.column(target)
    specs = []
    for (name, where), fraction in zip(domains.items(), fractions):
        keep = select_rows(dataset, where)
        domain_train, domain_test = train[keep[train]], test[keep[test]]
        size = max(1, round(fraction * domain_train.size))
        rows = np.sort(rng.choice(domain_train, size=size, replace=False))
        chosen = np.unique(column[domain_train])
        specs.append(_spec(f"domain-{name}", target, "p2l_domain", chosen, rows, domain_test,
                           dataset, where={k: list(v) for k, v in where.items()},
                           fraction=float(fraction), size=size, seed=seed))
    if digits is not None:
        d_train, d_test = _splits(digits, "train", "test")
        d_target = _target(digits, None)
        specs.append(_spec("domain-digits", d_target, "p2l_domain",
                           np.unique(digits.column(d_target)), d_train, d_test, digits,
                           where={}, fraction=1.0, size=int(d_train.size), seed=seed))
    return specs


def p2l_targets(dataset: ImageDataset, n_targets: int = 20, *, target: str | None = None,
                n_classes: int = 5, n_images: int = 250, group_by: str | None = "script",
                where: Mapping[str, Sequence] | None = None, seed: int = 0
                ) -> list[TaskSpec]:
    """P2L target tasks: ``n_images`` training images of ``n_classes`` random classes
    (the survey's typical user task: 250 images, 5 labels), balanced across classes.

    With ``group_by`` (Glyphs: ``"script"``), each target draws its classes from a single
    random group, so that targets lie close to different source domains. ``where``
    restricts the images (see :func:`select_rows`). Test: all test images of the classes
    (within ``where``). A ``group_by`` column the dataset lacks (e.g. on Digits) means no
    grouping.
    """
    target = _target(dataset, target)
    train, test = _splits(dataset, "train", "test")
    keep = select_rows(dataset, where)
    train, test = train[keep[train]], test[keep[test]]
    if n_images < n_classes:
        raise ValueError(f"p2l_targets: n_images ({n_images}) < n_classes ({n_classes})")
    per_class = np.full(n_classes, n_images // n_classes)
    per_class[: n_images % n_classes] += 1
    column = dataset.column(target)
    pool = _pool(dataset, target, None, train, min_count=int(per_class.max()))
    if group_by is None or group_by not in dataset.labels.columns:
        groups = {"all": pool}
    else:
        group_column = dataset.column(group_by)
        group_of_class = {int(c): int(np.bincount(group_column[train][column[train] == c])
                                     .argmax()) for c in pool}
        groups = {g: np.array([c for c in pool if group_of_class[int(c)] == g])
                  for g in sorted(set(group_of_class.values()))}
        groups = {g: members for g, members in groups.items() if members.size >= n_classes}
    if not groups:
        raise ValueError(f"p2l_targets: no group has {n_classes} classes with "
                         f">= {per_class.max()} training images")
    _check_count(f"p2l_targets: {n_classes} classes", n_classes,
                 max(g.size for g in groups.values()), "classes are available in a group")
    group_names = list(groups)
    rng = np.random.default_rng(seed)
    specs = []
    for i in range(n_targets):
        group = group_names[int(rng.integers(len(group_names)))]
        chosen = np.sort(rng.choice(groups[group], size=n_classes, replace=False))
        rows = _per_class_sample(rng, column, train, chosen, per_class)
        group_name = (dataset.label_names[group_by][group]
                      if group_by in dataset.label_names else str(group))
        specs.append(_spec(f"target-{i:03d}", target, "p2l_target", chosen, rows,
                           _rows_of(column, test, chosen), dataset, seed=seed,
                           group=group_name, n_images=n_images))
    return specs
