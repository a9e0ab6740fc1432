"""Scale presets for every experiment in the book, and parameter checks for notebooks.

Three scales exist everywhere: ``"smoke"`` (seconds, for CI), ``"book"`` (the default; CPU-friendly
sizes used to build the book) and ``"full"`` (the papers' protocol; meant for a GPU). A scale only
changes sizes and counts, never the code path, so each experiment has one frozen dataclass of sizes
and one instance of it per scale.

Experiments register their presets with :func:`register_presets`; notebooks call
:func:`check_parameters` in their first cells, which validates the parameters cell and returns the
preset for the chosen scale.

Examples
--------
>>> from transferlib.config import get_preset
>>> get_preset("data", "smoke").grid_size
16
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

SCALES: tuple[str, ...] = ("smoke", "book", "full")
DEFAULT_SCALE = "book"

# experiment -> scale -> frozen dataclass instance
PRESETS: dict[str, dict[str, Any]] = {}
# experiment -> datasets it can run on (None: every dataset in transferlib.data.DATASETS)
SUPPORTED_DATASETS: dict[str, tuple[str, ...] | None] = {}


def register_presets(
    experiment: str,
    presets: Mapping[str, Any],
    *,
    datasets: tuple[str, ...] | None = None,
) -> None:
    """Register the per-scale presets of one experiment.

    Parameters
    ----------
    experiment : str
        Name notebooks and experiment functions use to look the presets up (e.g. ``"nce_attributes"``).
    presets : mapping of str to frozen dataclass
        One instance per scale in :data:`SCALES`, all of the same frozen dataclass type.
    datasets : tuple of str, optional
        Datasets the experiment supports; ``None`` means every name in ``transferlib.data.DATASETS``.

    Raises
    ------
    ValueError
        If a scale is missing or unknown, or the experiment is already registered.
    TypeError
        If the presets are not instances of one frozen dataclass.
    """
    if experiment in PRESETS:
        raise ValueError(f"presets for experiment {experiment!r} are already registered")
    missing = [s for s in SCALES if s not in presets]
    unknown = [s for s in presets if s not in SCALES]
    if missing or unknown:
        raise ValueError(
            f"presets for {experiment!r} must define exactly the scales {SCALES}; "
            f"missing {missing}, unknown {unknown}"
        )
    types = {type(p) for p in presets.values()}
    (preset_type,) = types if len(types) == 1 else (None,)
    if preset_type is None or not dataclasses.is_dataclass(preset_type):
        raise TypeError(f"presets for {experiment!r} must be instances of one dataclass, got {types}")
    if not preset_type.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise TypeError(f"presets for {experiment!r} must be frozen dataclasses")
    PRESETS[experiment] = {s: presets[s] for s in SCALES}
    SUPPORTED_DATASETS[experiment] = None if datasets is None else tuple(datasets)


def check_scale(scale: str) -> str:
    """Return ``scale`` if it is one of :data:`SCALES`, else raise a ValueError listing them."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    return scale


def get_preset(experiment: str, scale: str) -> Any:
    """Return the frozen preset of ``experiment`` at ``scale``.

    Raises
    ------
    ValueError
        If the scale or the experiment is unknown.
    """
    check_scale(scale)
    if experiment not in PRESETS:
        raise ValueError(
            f"unknown experiment {experiment!r}; registered: {', '.join(sorted(PRESETS))}"
        )
    return PRESETS[experiment][scale]


def presets_table(experiment: str) -> pd.DataFrame:
    """Return the presets of ``experiment`` as a table, one row per field and one column per scale.

    Nested presets become dotted rows (``training.epochs``).
    """
    get_preset(experiment, DEFAULT_SCALE)
    rows = {s: _flatten(dataclasses.asdict(PRESETS[experiment][s])) for s in SCALES}
    table = pd.DataFrame(rows, dtype=object).map(lambda v: "–" if v is None else str(v))
    table.index.name = "setting"
    return table


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def check_parameters(
    experiment: str,
    scale: str,
    dataset: str,
    data_root: str | Path | None = None,
) -> Any:
    """Validate a notebook's parameters and return the experiment's preset at ``scale``.

    Called in the first cells of every notebook, so that a bad parameter stops the notebook
    before any work is done.

    Parameters
    ----------
    experiment : str
        Registered experiment name.
    scale : str
        One of :data:`SCALES`.
    dataset : str
        A name from ``transferlib.data.DATASETS`` that the experiment supports.
    data_root : str or Path, optional
        Folder holding a real (non-embedded) dataset; required unless the dataset is embedded.

    Returns
    -------
    preset
        The frozen dataclass of sizes for ``experiment`` at ``scale``.

    Raises
    ------
    ValueError
        Unknown scale, experiment or dataset, a dataset the experiment does not support,
        a real dataset without ``data_root``, or a ``data_root`` that is not a folder.
    """
    from transferlib.data import DATASETS, EMBEDDED_DATASETS

    preset = get_preset(experiment, scale)
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    supported = SUPPORTED_DATASETS[experiment]
    if supported is not None and dataset not in supported:
        raise ValueError(
            f"experiment {experiment!r} does not support dataset {dataset!r}; "
            f"it runs on {', '.join(supported)}"
        )
    if dataset not in EMBEDDED_DATASETS:
        if data_root is None:
            raise ValueError(
                f"dataset {dataset!r} is not embedded in transferlib: set data_root to the folder "
                f"holding it (see the chapter 'The data'); embedded datasets: "
                f"{', '.join(EMBEDDED_DATASETS)}"
            )
        if not Path(data_root).expanduser().is_dir():
            raise ValueError(f"data_root {str(data_root)!r} is not an existing folder")
    return preset


# ---------------------------------------------------------------------------------------------
# Presets of the opening chapters (owner: helper "book").
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackgroundPreset:
    """Sizes of the small executed examples in the chapter "Background and notation".

    Attributes
    ----------
    n_samples : int
        Samples drawn from each toy joint distribution of labels.
    n_tasks : int
        Toy tasks in the rank-correlation example.
    """

    n_samples: int
    n_tasks: int


@dataclass(frozen=True)
class DataPreset:
    """Sizes used in the chapter "The data" (its images are the experiments' own set).

    Attributes
    ----------
    grid_size : int
        Images shown in each sample grid.
    """

    grid_size: int


register_presets(
    "background",
    {
        "smoke": BackgroundPreset(n_samples=500, n_tasks=8),
        "book": BackgroundPreset(n_samples=20_000, n_tasks=30),
        "full": BackgroundPreset(n_samples=200_000, n_tasks=100),
    },
)
register_presets(
    "data",
    {
        "smoke": DataPreset(grid_size=16),
        "book": DataPreset(grid_size=32),
        "full": DataPreset(grid_size=64),
    },
)

@dataclass(frozen=True)
class RunParams:
    """The parameters every notebook takes (its papermill ``parameters`` cell), as one object.

    Attributes
    ----------
    scale : str
        One of :data:`SCALES`.
    dataset : str
        Dataset name (see ``transferlib.data.DATASETS``).
    data_root : str or None
        Folder of a real dataset.
    device : str
        Torch device; ``"auto"`` picks a GPU when there is one.
    seed : int
        Seed of every random stream of the run.
    cache_dir : str or None
        Cache root of every artifact of the run (see :func:`transferlib.cache.cache_root`).
    """

    scale: str = DEFAULT_SCALE
    dataset: str = "glyphs"
    data_root: str | None = None
    device: str = "auto"
    seed: int = 0
    cache_dir: str | None = None


def run_parameters(experiment: str | None = None, **values: object) -> RunParams:
    """Validate a notebook's parameters and return them as :class:`RunParams`."""
    params = RunParams(**values)  # type: ignore[arg-type]
    if experiment is not None:
        check_parameters(experiment, params.scale, params.dataset, params.data_root)
    else:
        check_scale(params.scale)
    return params
