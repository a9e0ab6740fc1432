"""Digits loader and the book helpers show_grid / attribute_table."""

import matplotlib
import numpy as np
import pytest

from transferlib.data import DATASETS, EMBEDDED_DATASETS, attribute_table, load_dataset, show_grid

matplotlib.use("Agg")


def test_digits_native_and_upsampled():
    native = load_dataset("digits")
    assert native.images.shape == (1797, 1, 8, 8) and native.images.max() == 255
    rgb = load_dataset("digits", image_size=32, channels=3)
    assert rgb.images.shape == (1797, 3, 32, 32)
    assert np.array_equal(rgb.images[:, 0], rgb.images[:, 2])
    counts = np.bincount(native.column("label")[native.splits["test"]])
    assert counts.min() >= 35 and counts.max() <= 37  # 20 % of ~180 per digit
    with pytest.raises(ValueError, match="channels"):
        load_dataset("digits", channels=2)


def test_registry_names():
    assert EMBEDDED_DATASETS == ("glyphs", "digits")
    assert {
        "cifar10",
        "cifar100",
        "fashion_mnist",
        "mnist",
        "celeba",
        "cub200",
        "awa2",
        "imagefolder",
    } <= set(DATASETS)


def test_show_grid_titles_every_panel(glyphs):
    fig = show_grid(glyphs, n=12, label="char", ncols=4)
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert len(titles) == 12 and all(t in glyphs.label_names["char"] for t in titles)
    grey = show_grid(load_dataset("digits"), n=5)
    assert sum(bool(ax.images) for ax in grey.axes) == 5


def test_attribute_table(glyphs):
    table = attribute_table(glyphs, split="train")
    assert table["attribute"].tolist() == glyphs.attributes
    expected = glyphs.labels.iloc[glyphs.splits["train"]]["uppercase"].mean()
    assert table.set_index("attribute").loc["uppercase", "positive_rate"] == pytest.approx(expected)
    assert (table["description"] != "").all()


def test_show_grid_with_several_labels(glyphs):
    rows = np.flatnonzero(glyphs.column("bold") == 1)[:3]
    fig = show_grid(glyphs, label=["char", "bold", "colour"], indices=rows, ncols=3)
    titles = [ax.get_title().split("\n") for ax in fig.axes if ax.images]
    colours = glyphs.label_names["colour"]
    assert all(t[1] == "bold" and t[2] in colours for t in titles)
