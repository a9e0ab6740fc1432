"""Typed presets, scale overrides and named random streams."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from transferlib.config import PRESETS, SCALES
from transferlib.experiments.presets import (
    GLYPHS,
    DataSpec,
    Preset,
    TrainingSpec,
    rng,
    scaled,
    stream_seed,
)


@dataclass(frozen=True)
class Chapter(Preset):
    data: DataSpec
    training: TrainingSpec
    n_tasks: int
    sizes: tuple[int, ...] = (10, 20)
    limit: int | None = None


BOOK = Chapter(data=GLYPHS["book"], training=TrainingSpec("small_cnn", 5, 0.1, 64), n_tasks=60)


def test_scales_are_the_book_preset_plus_overrides():
    presets = scaled(BOOK, smoke={"n_tasks": 4, "training": {"epochs": 1}}, full={"n_tasks": 200})
    assert list(presets) == list(SCALES)
    assert presets["book"] is BOOK
    assert presets["smoke"].training == TrainingSpec("small_cnn", 1, 0.1, 64)
    assert presets["smoke"].n_tasks == 4 and presets["full"].training == BOOK.training


@pytest.mark.parametrize(
    "override, message",
    [
        ({"n_task": 4}, "no field"),
        ({"training": {"epoch": 1}}, "no field"),
        ({"n_tasks": "4"}, "n_tasks must be"),
        ({"n_tasks": True}, "n_tasks must be"),
        ({"training": {"lr": "fast"}}, "lr must be"),
        ({"sizes": [10, 20]}, "sizes must be"),
        ({"sizes": (10, 2.5)}, "sizes must be"),
        ({"limit": 1.5}, "limit must be"),
    ],
)
def test_misspelled_or_mistyped_settings_fail_loudly(override, message):
    with pytest.raises(TypeError, match=message):
        scaled(BOOK, smoke=override, full={})


def test_optional_and_integer_valued_floats_are_accepted():
    preset = BOOK.replace({"limit": None, "training": {"lr": 1}})
    assert preset.limit is None and preset.training.lr == 1


def test_chapter_presets_are_typed_and_share_the_glyphs_set():
    import transferlib.experiments.nce  # noqa: F401  (registers its presets)

    for experiment in ("nce",):
        for scale, preset in PRESETS[experiment].items():
            assert isinstance(preset, Preset)
            assert preset.data == GLYPHS[scale]


def test_named_streams_are_reproducible_and_independent():
    draw = lambda *args: rng(*args).integers(1 << 30, size=4)
    np.testing.assert_array_equal(draw(0, "nce", "rows"), draw(0, "nce", "rows"))
    assert not np.array_equal(draw(0, "nce", "rows"), draw(0, "nce", "order"))
    assert not np.array_equal(draw(0, "nce", "rows"), draw(1, "nce", "rows"))
    # seed + k collisions cannot happen: seed 0's stream 1 is not seed 1's stream 0
    assert not np.array_equal(draw(0, "x", 1), draw(1, "x", 0))
    assert stream_seed(0, "train", "a") != stream_seed(0, "train", "b")
    assert 0 <= stream_seed(3, "train", "a") < 2**31


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_streams_reject_bad_seeds(seed):
    with pytest.raises(TypeError, match="seed"):
        rng(seed, "a")
