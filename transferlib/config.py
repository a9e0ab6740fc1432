"""Scale presets for every experiment in the book, and parameter checks for notebooks.

Three scales exist everywhere: ``"smoke"`` (seconds, for CI), ``"book"`` (the default; CPU-friendly
sizes used to build the book) and ``"full"`` (the papers' protocol; meant for a GPU). A scale only
changes sizes and counts, never the code path, so each experiment has one frozen dataclass of sizes
and one instance of it per scale.

Experiments register their presets with :func:`register_presets`; notebooks call
:func:`run_parameters` (or :func:`check_parameters`, which also returns the preset) in their first
cells, so that a bad value in the parameters cell stops them before any work.

Examples
--------
>>> from transferlib.config import get_preset
>>> get_preset("data", "smoke").grid_size
16
"""

from __future__ import annotations

import ctypes
import dataclasses
import importlib
import numbers
import os
import re
import sys
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
        raise TypeError(
            f"presets for {experiment!r} must be instances of one dataclass, got {types}"
        )
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
    preset = get_preset(experiment, scale)
    _check_dataset(experiment, dataset, data_root)
    return preset


def _check_dataset(experiment: str | None, dataset: Any, data_root: Any) -> None:
    """Dataset known and supported by ``experiment``; a real one has a ``data_root`` folder."""
    from transferlib.data import DATASETS, EMBEDDED_DATASETS

    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    supported = None if experiment is None else _supported_datasets(experiment)
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
        if not isinstance(data_root, (str, os.PathLike)):
            raise TypeError(f"data_root must be a folder path, got {data_root!r}")
        if not Path(data_root).expanduser().is_dir():
            raise ValueError(f"data_root {str(data_root)!r} is not an existing folder")


def _supported_datasets(experiment: str) -> tuple[str, ...] | None:
    """The registry entry of ``experiment``, importing ``transferlib.experiments.<experiment>``
    (where experiments register their presets) when it is not registered yet."""
    if experiment not in SUPPORTED_DATASETS:
        try:
            importlib.import_module(f"transferlib.experiments.{experiment}")
        except ModuleNotFoundError as error:
            if error.name != f"transferlib.experiments.{experiment}":
                raise
    if experiment not in SUPPORTED_DATASETS:
        raise ValueError(
            f"unknown experiment {experiment!r}; registered: {', '.join(sorted(SUPPORTED_DATASETS))}"
        )
    return SUPPORTED_DATASETS[experiment]


@dataclass(frozen=True)
class RunParams:
    """The parameters every notebook takes (its papermill ``parameters`` cell), as one object.

    Attributes
    ----------
    scale : str
        One of :data:`SCALES`.
    dataset : str
        A name from ``transferlib.data.DATASETS``.
    data_root : str or None
        Folder holding a real dataset's official files (unused for embedded datasets).
    device : str
        ``"auto"`` (a GPU when there is one), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    seed : int
        Non-negative seed of every random stream of the run.
    cache_dir : str or None
        Cache root of every artifact of the run (None: ``$TRANSFERLIB_CACHE`` or the default,
        see :func:`transferlib.cache.cache_root`).
    """

    scale: str = DEFAULT_SCALE
    dataset: str = "glyphs"
    data_root: str | None = None
    device: str = "auto"
    seed: int = 0
    cache_dir: str | None = None


def run_parameters(experiment: str | None = None, **values: Any) -> RunParams:
    """Validate a run's parameters before any work is done, and return them.

    Notebooks call it in their first cell with the values of their parameters cell, and
    ``transferlib run`` calls it before starting a kernel, so a bad value stops the run at once
    with a one-line message naming the parameter. Nothing is created or loaded: the checks only
    look (cheap ones first, so that ``device`` fails before the datasets are imported).

    Parameters
    ----------
    experiment : str, optional
        Experiment whose supported datasets apply (its module ``transferlib.experiments.<name>``
        is imported when it has not registered yet); None accepts any dataset.
    **values
        Fields of :class:`RunParams`; missing ones take their defaults.

    Returns
    -------
    RunParams

    Raises
    ------
    TypeError
        An unknown parameter (the message lists the valid ones), or a value of the wrong type
        (``seed="abc"``, ``seed=True``, ``device=0``).
    ValueError
        An unknown experiment, scale or dataset, a dataset the experiment does not support, an
        unavailable device, a negative seed, a real dataset without ``data_root``, a
        ``data_root`` whose files cannot be read, or a ``cache_dir`` that cannot be a cache.
    FileNotFoundError
        A ``data_root`` that lacks the dataset's official files (they are named).

    Examples
    --------
    >>> run_parameters("data", scale="smoke", seed=1)
    RunParams(scale='smoke', dataset='glyphs', data_root=None, device='auto', seed=1, cache_dir=None)
    """
    from transferlib.cache import check_cache_dir

    names = [f.name for f in dataclasses.fields(RunParams)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise TypeError(f"unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(names)}")
    params = RunParams(**values)
    if not isinstance(params.scale, str):
        raise TypeError(f"scale must be one of {', '.join(SCALES)}, got {params.scale!r}")
    check_scale(params.scale)
    if isinstance(params.seed, bool) or not isinstance(params.seed, numbers.Integral):
        raise TypeError(f"seed must be a non-negative integer, got {params.seed!r}")
    if params.seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {params.seed}")
    if params.cache_dir is not None and not isinstance(params.cache_dir, (str, os.PathLike)):
        raise TypeError(f"cache_dir must be a folder path or None, got {params.cache_dir!r}")
    check_cache_dir(params.cache_dir)
    _check_device(params.device)
    _check_dataset(experiment, params.dataset, params.data_root)
    from transferlib.data import EMBEDDED_DATASETS
    from transferlib.data.real import check_data_root

    if params.dataset not in EMBEDDED_DATASETS:
        check_data_root(params.dataset, params.data_root)
    return params


def _cuda_driver_present() -> bool:
    """Whether the CUDA driver library loads: a quick "no" without importing torch."""
    names = ("nvcuda.dll",) if sys.platform == "win32" else ("libcuda.so.1", "libcuda.so")
    for name in names:
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return True
    return False


def _check_device(device: Any) -> None:
    """Raise unless ``device`` is available; torch is imported only when it must decide."""
    if not isinstance(device, str):
        raise TypeError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}")
    name = device.strip().lower()
    if name in ("auto", "cpu"):
        return
    if re.fullmatch(r"cuda(:\d+)?", name) and not _cuda_driver_present():
        raise ValueError(
            f"device {device!r} is not available: this machine has no CUDA driver "
            "(use device 'cpu' or 'auto')"
        )
    if name == "mps" and sys.platform != "darwin":
        raise ValueError("device 'mps' exists only on Apple machines (use device 'cpu' or 'auto')")
    from transferlib.training import resolve_device

    resolve_device(name)


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
