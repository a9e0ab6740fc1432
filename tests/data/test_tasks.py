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


def _counts(dataset, spec, rows):
    return np.bincount(dataset.column(spec.target)[rows], minlength=dataset.column(
        spec.target).max() + 1)[list(spec.classes)]


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


def test_p2l_domains_have_clearly_different_sizes(glyphs):
    digits = load_digits(image_size=32, channels=3)
    specs = p2l_domains(glyphs, digits, seed=0)
    sizes = [s.params["size"] for s in specs]
    assert max(sizes) > 10 * min(sizes)
    assert specs[-1].params["dataset"] == "digits"
    train, _ = make_task_data(digits, specs[-1])
    assert train.images.shape[1:] == (3, 32, 32)
    greek = next(s for s in specs if s.name == "domain-greek")
    scripts = np.array(glyphs.label_names["script"])[glyphs.column("script")[greek.train_indices]]
    assert set(scripts) <= {"greek_upper", "greek_lower"}


def test_p2l_targets(glyphs):
    specs = p2l_targets(glyphs, 8, n_classes=5, n_images=52, seed=0)
    for spec in specs:
        assert len(spec.train_indices) == 52 and spec.num_classes == 5
        counts = _counts(glyphs, spec, spec.train_indices)
        assert counts.max() - counts.min() <= 1
        scripts = glyphs.column("script")[spec.train_indices]
        assert np.unique(scripts).size == 1  # one script group per target
