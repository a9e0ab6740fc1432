"""ImageDataset, TaskData, as_task, make_task_data, stratified_split."""

import numpy as np
import pandas as pd
import pytest

from transferlib.data import (
    CONSTANT,
    MASK,
    ImageDataset,
    TaskData,
    TaskSpec,
    as_task,
    load_dataset,
    make_task_data,
    stratified_split,
)


def _toy():
    images = np.arange(6 * 3 * 2 * 2, dtype=np.uint8).reshape(6, 3, 2, 2)
    labels = pd.DataFrame({"label": [0, 1, 2, 0, 1, 2], "flag": [1, 0, 1, 0, 1, 0]})
    return ImageDataset(
        "toy",
        images,
        labels,
        {"train": np.arange(4), "test": np.arange(4, 6)},
        {"label": ["a", "b", "c"], "flag": ["no", "yes"]},
        {"flag": "annotation"},
        masks=np.zeros((6, 2, 2), dtype=bool),
    )


def test_columns_kinds_and_subset():
    toy = _toy()
    assert toy.attributes == ["flag"] and toy.factors == ["label"]
    sub = toy.subset([5, 1, 2])
    assert np.array_equal(sub.images, toy.images[[5, 1, 2]])
    assert np.array_equal(sub.splits["train"], [1, 2]) and np.array_equal(sub.splits["test"], [0])
    assert sub.labels["label"].tolist() == [2, 1, 2]


def test_as_task_recodes_in_requested_order():
    train, test = as_task(_toy(), "label", classes=[2, 0])
    assert train.class_names == ("c", "a")
    assert train.labels.tolist() == [1, 0, 1]  # rows 0, 2, 3 -> classes a, c, a
    assert np.array_equal(train.images, _toy().images[[0, 2, 3]])
    assert test.labels.tolist() == [0]  # row 5 (class c); row 4 (b) dropped
    assert train.num_classes == 2 and len(train) == 3


def test_constant_and_mask_tasks():
    train, _ = as_task(_toy(), CONSTANT)
    assert train.num_classes == 1 and set(train.labels) == {0}
    train, _ = as_task(_toy(), MASK)
    assert train.labels.shape == (4, 2, 2) and train.class_names == ("background", "foreground")


def test_max_train_subsamples_deterministically():
    a, _ = as_task(_toy(), "flag", max_train=2, seed=1)
    b, _ = as_task(_toy(), "flag", max_train=2, seed=1)
    assert len(a) == 2 and a.fingerprint() == b.fingerprint()


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="valid: \\['label', 'flag'\\]"):
        as_task(_toy(), "colour")
    with pytest.raises(ValueError, match="no training rows"):
        as_task(_toy(), "label", classes=[5])
    with pytest.raises(ValueError, match="6 images but 2 label rows"):
        ImageDataset("bad", _toy().images, pd.DataFrame({"x": [0, 1]}), {}, {})
    with pytest.raises(TypeError, match="uint8"):
        TaskData(np.zeros((2, 1, 2, 2), dtype=np.float32), np.zeros(2, dtype=np.int64), ("a",))
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        TaskData(np.zeros((3, 1, 2, 2), dtype=np.uint8), np.zeros(2, dtype=np.int64), ("a",))
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'.*glyphs"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="data_root"):
        load_dataset("cifar10")


def test_make_task_data_checks_the_dataset():
    spec = TaskSpec(
        "t", "label", "custom", (1, 2), np.array([1, 2]), np.array([4, 5]), {"dataset": "other"}
    )
    with pytest.raises(ValueError, match="built on 'other'"):
        make_task_data(_toy(), spec)
    spec = TaskSpec("t", "label", "custom", (1, 2), np.array([1, 2]), np.array([4, 5]))
    train, test = make_task_data(_toy(), spec)
    assert train.labels.tolist() == [0, 1] and test.labels.tolist() == [0, 1]
    assert spec.key()["classes"] == [1, 2]


def test_task_fingerprint_changes_with_content():
    a, _ = as_task(_toy(), "label")
    b, _ = as_task(_toy(), "flag")
    assert a.fingerprint() != b.fingerprint()


def test_stratified_split_keeps_the_fraction_of_every_class():
    labels = np.repeat([0, 1, 2], [10, 20, 30])
    split = stratified_split(labels, 0.2, seed=0)
    assert np.bincount(labels[split["test"]]).tolist() == [2, 4, 6]
    assert np.array_equal(np.sort(np.concatenate([split["train"], split["test"]])), np.arange(60))
    other = stratified_split(labels, 0.2, seed=1)
    assert not np.array_equal(split["test"], other["test"])
