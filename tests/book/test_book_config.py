"""transferlib.config: the preset registry and the parameter checks notebooks run first."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from transferlib import config
from transferlib.config import SCALES, check_parameters, get_preset, presets_table, register_presets


@dataclass(frozen=True)
class _Sizes:
    n: int


@pytest.fixture
def registry(monkeypatch):
    """Isolated copies of the registry, so tests can register experiments freely."""
    monkeypatch.setattr(config, "PRESETS", dict(config.PRESETS))
    monkeypatch.setattr(config, "SUPPORTED_DATASETS", dict(config.SUPPORTED_DATASETS))


def test_scales_are_the_three_of_the_brief() -> None:
    assert SCALES == ("smoke", "book", "full")


@pytest.mark.parametrize("experiment", sorted(config.PRESETS))
def test_every_registered_experiment_has_one_frozen_preset_per_scale(experiment: str) -> None:
    presets = [get_preset(experiment, scale) for scale in SCALES]
    assert len({type(p) for p in presets}) == 1
    field = next(iter(presets[0].__dataclass_fields__))
    with pytest.raises(AttributeError):  # FrozenInstanceError
        setattr(presets[0], field, 0)


@pytest.mark.parametrize("experiment", ["background", "data"])
def test_opening_chapters_grow_from_smoke_to_full(experiment: str) -> None:
    table = presets_table(experiment).astype(int)
    assert list(table.columns) == list(SCALES)
    assert (table["smoke"] < table["book"]).all() and (table["book"] <= table["full"]).all()


def test_register_and_get(registry) -> None:
    register_presets(
        "toy", {"smoke": _Sizes(1), "book": _Sizes(2), "full": _Sizes(3)}, datasets=("glyphs",)
    )
    assert get_preset("toy", "book") == _Sizes(2)
    assert config.SUPPORTED_DATASETS["toy"] == ("glyphs",)


def test_register_refuses_missing_or_unknown_scales(registry) -> None:
    with pytest.raises(ValueError, match="missing \\['full'\\]"):
        register_presets("toy", {"smoke": _Sizes(1), "book": _Sizes(2)})
    with pytest.raises(ValueError, match="unknown \\['huge'\\]"):
        register_presets(
            "toy", {"smoke": _Sizes(1), "book": _Sizes(2), "full": _Sizes(3), "huge": _Sizes(4)}
        )


def test_register_refuses_duplicates_and_non_frozen_presets(registry) -> None:
    @dataclass
    class Mutable:
        n: int

    with pytest.raises(ValueError, match="already registered"):
        register_presets("data", {s: _Sizes(1) for s in SCALES})
    with pytest.raises(TypeError, match="frozen"):
        register_presets("toy", {s: Mutable(1) for s in SCALES})
    with pytest.raises(TypeError, match="one dataclass"):
        register_presets("toy", {s: {"n": 1} for s in SCALES})


def test_get_preset_names_the_problem() -> None:
    with pytest.raises(ValueError, match="unknown scale 'huge'; choose one of smoke, book, full"):
        get_preset("data", "huge")
    with pytest.raises(ValueError, match="unknown experiment 'nope'"):
        get_preset("nope", "book")


def test_check_parameters_returns_the_preset_for_embedded_data() -> None:
    assert check_parameters("data", "smoke", "glyphs") == get_preset("data", "smoke")
    assert check_parameters("data", "book", "digits", None) == get_preset("data", "book")


@pytest.mark.parametrize(
    ("scale", "dataset", "data_root", "message"),
    [
        ("huge", "glyphs", None, "unknown scale 'huge'"),
        ("book", "imagenet22k", None, "unknown dataset 'imagenet22k'"),
        ("book", "cifar10", None, "not embedded in transferlib: set data_root"),
        ("book", "cifar10", "/definitely/not/here", "is not an existing folder"),
    ],
)
def test_check_parameters_stops_bad_parameters(scale, dataset, data_root, message) -> None:
    with pytest.raises(ValueError, match=message):
        check_parameters("data", scale, dataset, data_root)


def test_check_parameters_accepts_a_real_dataset_with_its_folder(tmp_path) -> None:
    assert check_parameters("data", "book", "cifar10", tmp_path) == get_preset("data", "book")


def test_check_parameters_respects_supported_datasets(registry) -> None:
    register_presets("toy", {s: _Sizes(1) for s in SCALES}, datasets=("glyphs",))
    with pytest.raises(ValueError, match="does not support dataset 'digits'"):
        check_parameters("toy", "book", "digits")
