"""Task constructors: sizes, balance, imbalance, disjointness, determinism, errors."""

import numpy as np
import pytest

from transferlib.data import (
    CONSTANT,
    MASK,
    attribute_tasks,
    class_split,
    few_shot_episodes,
    identity_task,
    imbalanced_binary_tasks,
    k_class_tasks,
    load_digits,
    make_task_data,
    multi_task_set,
    p2l_domains,
    p2l_targets,
    random_class_subsets,
    small_balanced_tasks,
    trivial_task,
)
from transferlib.data.tasks import GLYPHS_DOMAINS, p2l_partition


def _counts(dataset, spec, rows):
    return np.bincount(
        dataset.column(spec.target)[rows], minlength=dataset.column(spec.target).max() + 1
    )[list(spec.classes)]


def test_random_class_subsets_take_all_examples_of_the_classes(glyphs):
    specs = random_class_subsets(glyphs, 20, max_classes=100, seed=0)
    sizes = [s.num_classes for s in specs]
    assert min(sizes) >= 2 and max(sizes) <= 100 and len(set(sizes)) > 5
    column = glyphs.column("char")
    for spec in specs:
        train = glyphs.splits["train"]
        assert np.array_equal(spec.train_indices, train[np.isin(column[train], spec.classes)])
        assert set(column[spec.test_indices]) == set(spec.classes)


def test_constructors_are_deterministic_in_seed(glyphs):
    a = [s.key() for s in small_balanced_tasks(glyphs, 5, per_class=10, seed=1)]
    b = [s.key() for s in small_balanced_tasks(glyphs, 5, per_class=10, seed=1)]
    c = [s.key() for s in small_balanced_tasks(glyphs, 5, per_class=10, seed=2)]
    assert a == b and a != c


def test_small_balanced_tasks_are_balanced(glyphs):
    for spec in small_balanced_tasks(glyphs, 10, n_classes=4, per_class=12, seed=0):
        assert spec.num_classes == 4
        assert _counts(glyphs, spec, spec.train_indices).tolist() == [12] * 4
        train, test = make_task_data(glyphs, spec)
        assert np.bincount(train.labels).tolist() == [12] * 4 and len(test) > 0


def test_imbalanced_binary_ratio(glyphs):
    for spec in imbalanced_binary_tasks(glyphs, 10, minority_range=(3, 5), ratio=5, seed=0):
        majority, minority = _counts(glyphs, spec, spec.train_indices)
        assert 3 <= minority <= 5 and majority == 5 * minority
        train, _ = make_task_data(glyphs, spec)
        assert np.bincount(train.labels)[1] == minority  # minority has code 1


def test_few_shot_episodes_use_held_out_classes(glyphs):
    source, target = class_split(glyphs, 60, seed=0)
    assert not set(source) & set(target) and len(source) + len(target) == 110
    specs = few_shot_episodes(glyphs, 10, n_way=5, n_support=3, classes=target, seed=0)
    for spec in specs:
        assert set(spec.classes) <= set(target)
        assert _counts(glyphs, spec, spec.train_indices).tolist() == [3] * 5
        assert np.intersect1d(spec.train_indices, spec.test_indices).size == 0
        assert np.isin(spec.train_indices, glyphs.splits["test"]).all()
        assert np.isin(spec.test_indices, glyphs.splits["test"]).all()
        assert (_counts(glyphs, spec, spec.test_indices) > 0).all()


def test_impossible_specs_raise_with_the_numbers(glyphs):
    with pytest.raises(ValueError, match="asked for 200 but only 110"):
        random_class_subsets(glyphs, 2, max_classes=200)
    with pytest.raises(ValueError, match="asked for 5 but only 0"):
        small_balanced_tasks(glyphs, 2, per_class=500)
    with pytest.raises(ValueError, match="n_source_classes must be in \\[1, 109\\]"):
        class_split(glyphs, 110)
    with pytest.raises(ValueError, match="valid:"):
        attribute_tasks(glyphs, ["uppercase", "furry"])
    with pytest.raises(ValueError, match="valid:"):
        random_class_subsets(glyphs, 2, target="species")


def test_nce_tasks(glyphs):
    specs = attribute_tasks(glyphs)
    assert [s.target for s in specs] == glyphs.attributes
    assert {s.params["attribute_kind"] for s in specs} == {"character", "font", "appearance"}
    trivial = trivial_task(glyphs)
    assert trivial.target == CONSTANT
    train, _ = make_task_data(glyphs, trivial)
    assert set(train.labels) == {0}
    identity = identity_task(glyphs)
    assert identity.target == "char" and identity.num_classes == 110


def test_hscore_tasks(glyphs):
    specs = k_class_tasks(glyphs, ks=(3, 5, 10, 20), n_tasks_per_k=2, seed=0)
    assert [s.num_classes for s in specs] == [3, 3, 5, 5, 10, 10, 20, 20]
    tasks = multi_task_set(glyphs)
    targets = [s.target for s in tasks]
    assert {"char", "font_family", "style", "case", "colour", "size_bucket", MASK} <= set(targets)
    for spec in tasks:  # all on the same images
        assert np.array_equal(spec.train_indices, glyphs.splits["train"])
    train, _ = make_task_data(glyphs, tasks[targets.index(MASK)])
    assert train.labels.shape == (len(glyphs.splits["train"]), 32, 32)


def test_p2l_partition_gives_every_class_the_same_shares(glyphs):
    part = p2l_partition(glyphs, (0.5, 0.125, 0.25, 0.125), seed=0)
    counts = np.stack([np.bincount(glyphs.column("char")[part == p]) for p in range(4)])
    assert (counts[0] == 15).all() and (counts[2] == 7).all() or (counts[2] == 8).all()
    assert counts.sum(axis=0).tolist() == np.bincount(glyphs.column("char")).tolist()
    assert not np.array_equal(part, p2l_partition(glyphs, (0.5, 0.125, 0.25, 0.125), seed=1))
    with pytest.raises(ValueError, match="four positive shares"):
        p2l_partition(glyphs, (0.5, 0.5))


def test_p2l_domains_split_into_four_parts_with_a_size_ladder(glyphs):
    parts = (0.5, 0.125, 0.25, 0.125)
    specs = p2l_domains(
        glyphs, parts=parts, min_fraction=1 / 16, min_per_class=2, target_fraction=0.5, seed=0
    )
    sources = [s for s in specs if s.params["part"] == "source"]
    targets = [s for s in specs if s.params["part"] == "target"]
    assert [s.params["domain"] for s in sources] == list(GLYPHS_DOMAINS)
    assert [s.params["domain"] for s in targets] == list(GLYPHS_DOMAINS)
    part = p2l_partition(glyphs, parts, seed=0)
    for s in sources:
        assert set(part[s.train_indices]) == {0} and set(part[s.test_indices]) == {1}
        assert len(s.train_indices) >= 2 * s.num_classes  # min_per_class
    for s in targets:
        assert set(part[s.train_indices]) == {2} and set(part[s.test_indices]) == {3}
    sizes = [s.params["size"] for s in sources]
    assert max(sizes) > 10 * min(sizes)
    fractions = sorted(s.params["fraction"] for s in sources)
    assert fractions[-1] == 1.0  # the ladder starts at 1, in a random order
    greek = next(s for s in sources if s.params["domain"] == "greek_lower")
    scripts = np.array(glyphs.label_names["script"])[glyphs.column("script")[greek.train_indices]]
    assert set(scripts) == {"greek_lower"}
    fixed = p2l_domains(
        glyphs,
        {"general": GLYPHS_DOMAINS["general"], "digit": {"script": ["digit"]}},
        fractions={"general": 0.5},
        min_per_class=1,
        seed=0,
    )
    assert fixed[0].params["fraction"] == pytest.approx(0.5, abs=0.01)
    with pytest.raises(ValueError, match="fractions"):
        p2l_domains(glyphs, {"digit": {"script": ["digit"]}}, fractions={"bold": 0.5})


def test_p2l_domains_take_digits_as_one_domain():
    digits = load_digits(image_size=16, channels=3)
    source, target = p2l_domains(digits, {"digits": {}}, min_fraction=1.0, seed=0)
    assert source.params["dataset"] == "digits" and source.num_classes == 10
    train, _ = make_task_data(digits, source)
    assert train.images.shape[1:] == (3, 16, 16)
    assert len(target.train_indices) == pytest.approx(0.1 * len(digits) / 4, abs=10)


def test_p2l_targets_are_small_user_like_tasks_from_the_target_parts(glyphs):
    slices = {"latin_upper": {"script": ["latin_upper"]}, "symbol": {"script": ["symbol"]}}
    specs = p2l_targets(glyphs, 30, slices=slices, class_range=(2, 20), n_images=40, seed=0)
    part = p2l_partition(glyphs, seed=0)
    classes = [s.num_classes for s in specs]
    assert min(classes) >= 2 and max(classes) <= 20
    assert np.mean(classes) < 8  # P(K) ~ 1/K^2 favours few classes
    for spec in specs:
        assert set(part[spec.train_indices]) == {2} and set(part[spec.test_indices]) == {3}
        assert len(spec.train_indices) <= 40
        scripts = glyphs.column("script")[spec.train_indices]
        assert np.unique(scripts).size == 1  # one slice per target
        assert set(glyphs.column("char")[spec.test_indices]) <= set(spec.classes)
    with pytest.raises(ValueError, match="class_range"):
        p2l_targets(glyphs, 1, class_range=(1, 5))
