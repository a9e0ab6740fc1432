"""Which estimator should I use? Every registered score on every sweep of the book.

The four paper chapters already pay for the expensive part: trained sources, transferred heads
and fine-tuned networks with measured accuracy. This module reads their sweeps through their
public runners (cached and resumable) and recomputes *every* score of
:data:`~transferlib.scores.SCORES` on the inputs the chapter scored from (the same source
networks' outputs on the same training images), then measures how well each score predicts the
measured accuracy:

* :func:`benchmark_sweeps` -- the sweeps, each a tidy table of ground truth (``group``,
  ``candidate``, ``truth``) and the score-input unit it is scored from;
* :func:`run_scores` -- every score on every item of one unit, with its wall time (a resumable
  sweep on :func:`~transferlib.experiments.sweep.run_sweep`);
* :func:`score_measures` -- Pearson r, weighted Kendall tau_w, the regret and relative accuracy
  of the score's pick, with bootstrap intervals over target tasks;
* :func:`winners` -- which score wins each sweep by a stated rule, and where none does.

Two kinds of sweep. In a *selection* sweep the candidates are models, sources or layers for one
target (the group): the score should pick the best candidate, and the measures are computed per
target and averaged. In a *tasks* sweep the candidates are target tasks for one source: the
score should order the tasks by how well they transfer; there is no pick to regret.
"""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from transferlib.config import RunParams, register_presets
from transferlib.evaluation import (
    pearson,
    relative_top_k_accuracy,
    top_k_regret,
    weighted_kendall,
)
from transferlib.experiments import hscore, leep, nce, p2l
from transferlib.experiments.presets import Preset, rng, scaled
from transferlib.experiments.protocols import task_codes
from transferlib.experiments.sources import network_outputs, train_network
from transferlib.experiments.sweep import result_store, run_sweep
from transferlib.scores import SCORES
from transferlib.validation import check_int

__all__ = [
    "KINDS",
    "MEASURES",
    "PRESETS",
    "BenchmarkPreset",
    "ScoreInputs",
    "Sweep",
    "benchmark_sweeps",
    "bootstrap_interval",
    "never_saturated",
    "run_benchmark",
    "run_scores",
    "score_inputs",
    "score_measures",
    "score_summary",
    "stratified_rows",
    "sweeps_table",
    "timing_table",
    "unit_items",
    "winners",
]

_MODULE = __name__

KINDS = ("selection", "tasks")
#: The measures of :func:`score_measures`, as columns (higher is better except ``regret``).
MEASURES = ("pearson", "tau_w", "relative_accuracy", "regret")
#: The reason :func:`score_measures` gives where a score is constant over a sweep's candidates.
_CONSTANT = "fewer than three candidates per target, or a constant"


@dataclass(frozen=True)
class BenchmarkPreset(Preset):
    """How the benchmark measures the scores (the sweeps are the chapters' own presets).

    Attributes
    ----------
    chapters : tuple of str
        The chapters whose sweeps are read (``"nce"``, ``"leep"``, ``"hscore"``, ``"p2l"``).
    leep_settings : tuple of str
        The LEEP chapter's settings read (of ``leep.SETTINGS``).
    max_tasks : int or None
        Tasks sweeps (the LEEP settings, the H-score targets) are scored on their first
        ``max_tasks`` tasks (the chapters draw them at random; None: all).
    max_train : int or None
        Every score of a task is computed on the same class-stratified random ``max_train`` of
        its training examples when it has more (:func:`stratified_rows`; None: all). Large
        tasks cost the slower scores minutes each (N-LEEP fits a Gaussian mixture of ``5 K``
        components); the LEEP chapter leaves the later estimators out of such tasks instead.
    n_boot : int
        Bootstrap resamples of the target tasks.
    level : float
        Coverage of the bootstrap intervals.
    scores : tuple of str or None
        Keys of :data:`~transferlib.scores.SCORES` to benchmark (None: every registered score).
        The book scale leaves out N-LEEP, whose Gaussian-mixture fit costs about a second per
        task, 85 % of the chapter's scoring time; the full scale has every score.
    """

    chapters: tuple[str, ...] = ("nce", "leep", "hscore", "p2l")
    leep_settings: tuple[str, ...] = leep.SETTINGS
    max_tasks: int | None = 20
    max_train: int | None = 300
    n_boot: int = 1000
    level: float = 0.95
    scores: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = [c for c in self.chapters if c not in _CHAPTERS]
        if unknown:
            raise ValueError(f"unknown chapter(s) {unknown}; valid: {list(_CHAPTERS)}")
        unknown = [c for c in self.leep_settings if c not in leep.SETTINGS]
        if unknown:
            raise ValueError(f"unknown LEEP setting(s) {unknown}; valid: {list(leep.SETTINGS)}")
        if self.max_tasks is not None and self.max_tasks < 3:
            raise ValueError(f"max_tasks must be at least 3 or None, got {self.max_tasks}")
        if self.max_train is not None and self.max_train < 10:
            raise ValueError(f"max_train must be at least 10 or None, got {self.max_train}")
        if self.n_boot < 10:
            raise ValueError(f"n_boot must be at least 10, got {self.n_boot}")
        if not 0 < self.level < 1:
            raise ValueError(f"level must lie in (0, 1), got {self.level}")
        unknown = [name for name in self.scores or () if name not in SCORES]
        if unknown or self.scores == ():
            raise ValueError(f"scores must be registered names, got {self.scores}")

    @property
    def score_names(self) -> tuple[str, ...]:
        """The scores benchmarked: :attr:`scores`, or every registered one."""
        return tuple(SCORES) if self.scores is None else self.scores


_CHAPTERS = {"nce": nce, "leep": leep, "hscore": hscore, "p2l": p2l}

BOOK = BenchmarkPreset(scores=tuple(name for name in SCORES if name != "nleep"))
PRESETS = scaled(
    BOOK,
    smoke={
        "leep_settings": ("large", "imbalanced"),
        "max_train": 60,
        "n_boot": 200,
        "scores": None,
    },
    full={"max_train": None, "n_boot": 2000, "scores": None},
)
register_presets("benchmark", PRESETS, datasets=("glyphs",))


# ------------------------------------------------------------------------------------------------
# Score inputs: what each chapter scores from
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreInputs:
    """The source side and target labels of one item (None: the sweep has no such input)."""

    target_labels: np.ndarray
    source_labels: np.ndarray | None = None
    source_probs: np.ndarray | None = None
    features: np.ndarray | None = None


#: Why a score has no value on a unit, by the input it lacks and the unit's chapter.
_NO_INPUT = {
    ("probs", "hscore"): "the sweep transfers an intermediate layer or a task encoder: "
    "no class probabilities",
    ("labels", "hscore"): "no source classifier, so no source labels",
}


def _preset(run: RunParams, chapter: str) -> Any:
    return _CHAPTERS[chapter].PRESETS[run.scale]


def unit_items(run: RunParams, unit: str, max_tasks: int | None = None) -> list[str]:
    """The items of a score-input unit (``"leep/small/resnet20"``, ``"p2l/pairs"``, ...); the
    first ``max_tasks`` of a unit of target tasks."""
    chapter, *rest = unit.split("/")
    preset = _preset(run, chapter)
    if unit == "nce/attributes":
        table = nce.run_attribute_transfer(run, preset, progress=False)
        return list(table["source"] + "→" + table["target"])
    if chapter == "leep" and rest[0] == "selection":
        return list(leep.selection_candidates(preset))
    if chapter == "leep":
        return [spec.name for spec in leep.setting_tasks(run, preset, rest[0])][:max_tasks]
    if unit == "hscore/layers":
        return list(preset.layers)
    if unit == "hscore/targets":
        return [spec.name for spec in hscore.target_tasks(run, preset)][:max_tasks]
    if unit == "hscore/world":
        return [
            f"{s}→{t}" for t in hscore.CLASSIFICATION_TASKS for s in hscore.TASK_GROUPS if s != t
        ]
    if unit == "p2l/pairs":
        tasks = p2l.p2l_tasks(run, preset)
        return [f"{s}→{t}" for t in tasks.targets for s in tasks.sources]
    raise ValueError(f"unknown score-input unit {unit!r}")


@functools.lru_cache(maxsize=4)
def _nce_outputs(run: RunParams, preset: nce.NCEPreset, source: str) -> dict[str, np.ndarray]:
    spec = nce.nce_tasks(run, preset)[source]
    ds = nce.nce_dataset(run, preset)
    network = train_network(run, ds, spec, preset.training, role="dedicated", progress=False)
    return network_outputs(run, network, ds.images[spec.train_indices], ("probs", "features"))


@functools.lru_cache(maxsize=2)
def _leep_outputs(run: RunParams, preset: leep.LEEPPreset, setting: str, source: str) -> Any:
    """Source outputs on every image of the setting's data set (the chapter's own cache for
    ResNet-20; the EfficientNet's full forward pass, whose upper part the chapter runs from
    cached activation maps, gives the same probabilities and features)."""
    ds = leep.setting_dataset(run, preset, setting)
    network = leep.source_network(run, preset, source)
    return network_outputs(run, network, ds.images, ("probs", "features"))


def _probability_inputs(
    out: dict[str, np.ndarray], rows: np.ndarray, labels: np.ndarray
) -> ScoreInputs:
    """NCE reads the source model's predicted labels, as in LEEP's §5.6 and the LEEP chapter."""
    probs = out["probs"][rows].astype(np.float64)
    probs /= probs.sum(1, keepdims=True)
    return ScoreInputs(labels, probs.argmax(1), probs, out["features"][rows].astype(np.float64))


def score_inputs(run: RunParams, unit: str, item: str) -> ScoreInputs:
    """What the chapter of ``unit`` scores ``item`` from (see :func:`unit_items`)."""
    chapter, *rest = unit.split("/")
    preset = _preset(run, chapter)
    if unit == "nce/attributes":
        source, target = item.split("→")
        tasks, ds = nce.nce_tasks(run, preset), nce.nce_dataset(run, preset)
        rows = tasks[source].train_indices
        out = _nce_outputs(run, preset, source)
        return ScoreInputs(
            task_codes(ds, tasks[target], rows, "train"),
            task_codes(ds, tasks[source], rows, "train"),
            out["probs"].astype(np.float64),
            out["features"].astype(np.float64),
        )
    if chapter == "leep" and rest[0] == "selection":
        spec = leep.selection_task(run, preset)
        ds = leep.setting_dataset(run, preset, "large")
        network = leep.source_network(run, preset, item)
        rows = spec.train_indices
        out = network_outputs(run, network, ds.images[rows], ("probs", "features"))
        return _probability_inputs(out, np.arange(rows.size), task_codes(ds, spec, rows, "train"))
    if chapter == "leep":
        setting, source = rest
        spec = {s.name: s for s in leep.setting_tasks(run, preset, setting)}[item]
        ds = leep.setting_dataset(run, preset, setting)
        labels = task_codes(ds, spec, spec.train_indices, "train")
        return _probability_inputs(
            _leep_outputs(run, preset, setting, source), spec.train_indices, labels
        )
    if unit == "hscore/layers":
        spec, ds = hscore.layer_task(run, preset), hscore.layer_dataset(run, preset)
        features = hscore.layer_features(run, preset, "train", [item])[item]
        labels = task_codes(ds, spec, spec.train_indices, "train")
        return ScoreInputs(labels, features=features.astype(np.float64))
    if unit == "hscore/targets":
        base, ds = hscore.layer_task(run, preset), hscore.layer_dataset(run, preset)
        spec = {s.name: s for s in hscore.target_tasks(run, preset)}[item]
        layer = preset.target_layer
        features = hscore.layer_features(run, preset, "train", [layer])[layer]
        positions = np.searchsorted(base.train_indices, spec.train_indices)
        labels = task_codes(ds, spec, spec.train_indices, "train")
        return ScoreInputs(labels, features=features[positions].astype(np.float64))
    if unit == "hscore/world":
        source, target = item.split("→")
        world = hscore.scene_world(run, preset).dataset
        rows = np.asarray(world.splits["train"])
        _, labels = np.unique(world.column(target)[rows], return_inverse=True)
        features = hscore.world_codes(run, preset, source, "train")
        return ScoreInputs(labels, features=features.astype(np.float64))
    if unit == "p2l/pairs":
        source, target = item.split("→")
        spec = p2l.p2l_tasks(run, preset).targets[target]
        ds = p2l.p2l_datasets(run, preset)[spec.params["dataset"]]
        network = p2l.source_network(run, preset, source)
        rows = spec.train_indices
        out = network_outputs(run, network, ds.images[rows], ("probs", "features"))
        return _probability_inputs(out, np.arange(rows.size), task_codes(ds, spec, rows, "train"))
    raise ValueError(f"unknown score-input unit {unit!r}")


# ------------------------------------------------------------------------------------------------
# Scores and their wall time
# ------------------------------------------------------------------------------------------------


def _missing_input(unit: str, needs: str) -> str | None:
    """Why a score needing ``needs`` has no value on ``unit`` (None: it has the input)."""
    return _NO_INPUT.get((needs, unit.split("/")[0]))


def stratified_rows(labels: np.ndarray, size: int, generator: np.random.Generator) -> np.ndarray:
    """Sorted rows of a random subsample of about ``size`` examples that keeps each class's
    share (rounded down) and at least two examples of every class that has two.

    Every class keeps ``max(min(2, n_c), floor(size * n_c / n))`` examples, drawn at random;
    the largest classes give up what the floors of two add, and the rest of ``size`` is drawn
    from the remaining rows. (With more than ``size / 2`` classes the subsample is larger.)
    """
    labels = np.asarray(labels)
    if size >= labels.size:
        return np.arange(labels.size)
    classes, counts = np.unique(labels, return_counts=True)
    quotas = np.maximum(np.minimum(2, counts), size * counts // labels.size)
    for _ in range(quotas.sum() - size):  # the floors of two come out of the largest classes
        largest = int(np.argmax(quotas))
        if quotas[largest] <= 2:
            break
        quotas[largest] -= 1
    chosen = np.concatenate(
        [
            generator.choice(np.flatnonzero(labels == c), q, replace=False)
            for c, q in zip(classes, quotas)
        ]
    )
    extra = size - chosen.size
    if extra > 0:
        rest = np.setdiff1d(np.arange(labels.size), chosen)
        chosen = np.concatenate([chosen, generator.choice(rest, extra, replace=False)])
    return np.sort(chosen)


def _subsample(inputs: ScoreInputs, rows: np.ndarray) -> ScoreInputs:
    def take(values: np.ndarray | None) -> np.ndarray | None:
        return None if values is None else values[rows]

    return ScoreInputs(
        inputs.target_labels[rows],
        take(inputs.source_labels),
        take(inputs.source_probs),
        take(inputs.features),
    )


def _score_row(
    run: RunParams, unit: str, names: tuple[str, ...], max_train: int | None, item: str
) -> dict[str, Any]:
    """Every applicable score of one item, its wall time, and the error of any that refused."""
    inputs = score_inputs(run, unit, item)
    available = int(inputs.target_labels.size)
    if max_train is not None and available > max_train:
        generator = rng(run.seed, "benchmark", "subsample", unit, item)
        inputs = _subsample(inputs, stratified_rows(inputs.target_labels, max_train, generator))
    given = {
        "source_labels": inputs.source_labels,
        "source_probs": inputs.source_probs,
        "features": inputs.features,
    }
    row: dict[str, Any] = {
        "item": item,
        "n_train": int(inputs.target_labels.size),
        "n_available": available,
    }
    for name in names:
        info = SCORES[name]
        value, seconds, error = np.nan, np.nan, _missing_input(unit, info.needs) or ""
        if not error:
            start = time.perf_counter()
            # a score's numerical warnings (LogME's fixed point stopping short of its
            # tolerance, an overflow inside it) are kept out of the page; a non-finite value
            # is recorded as missing, with the warning as the reason
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    value = float(info.compute(target_labels=inputs.target_labels, **given))
                except ValueError as exc:  # a score that refuses this input says why
                    error = str(exc).split("\n")[0]
            seconds = time.perf_counter() - start
            if not error and not np.isfinite(value):
                value = np.nan
                error = f"non-finite value ({caught[0].message if caught else 'no warning'})"
        row |= {name: value, f"{name}_seconds": seconds, f"{name}_error": error}
    return row


def run_scores(
    run: RunParams,
    unit: str,
    scores: Sequence[str] | None = None,
    *,
    max_tasks: int | None = None,
    max_train: int | None = None,
    progress: bool = True,
    executor: Executor | None = None,
) -> pd.DataFrame:
    """Every score on every item of ``unit`` (resumable; stored per unit and chapter preset).

    Parameters
    ----------
    run : RunParams
    unit : str
        A score-input unit (:func:`unit_items`).
    scores : sequence of str, optional
        Keys of :data:`~transferlib.scores.SCORES` (default: all).
    max_tasks : int, optional
        Score the first ``max_tasks`` tasks of a unit of target tasks (:func:`unit_items`).
    max_train : int, optional
        Score a task on a class-stratified random ``max_train`` of its training examples when
        it has more (:func:`stratified_rows`, from the named stream ``("benchmark",
        "subsample", unit, item)``; the same rows for every score).
    progress, executor
        As for :func:`~transferlib.experiments.sweep.run_sweep`.

    Returns
    -------
    DataFrame
        One row per item: ``item, n_train`` (examples scored), ``n_available``, and for each score ``<score>`` (NaN where it has
        no value), ``<score>_seconds`` (wall time of the score alone, inputs loaded) and
        ``<score>_error`` (why it has no value; empty otherwise).
    """
    names = tuple(SCORES if scores is None else scores)
    unknown = [n for n in names if n not in SCORES]
    if unknown:
        raise ValueError(f"unknown score(s) {unknown}; registered: {sorted(SCORES)}")
    chapter = unit.split("/")[0]
    if chapter not in _CHAPTERS:
        raise ValueError(f"unknown score-input unit {unit!r}")
    config = {"chapter": _preset(run, chapter), "scores": names, "max_train": max_train}
    slug = unit.replace("/", "-")
    store = result_store(run, _MODULE, f"scores-{slug}", ("item",), config)
    return run_sweep(
        store,
        unit_items(run, unit, max_tasks),
        functools.partial(_score_row, run, unit, names, max_train),
        keys=lambda item: [{"item": item}],
        executor=executor,
        progress=progress,
        desc=f"scores {unit}",
    )


# ------------------------------------------------------------------------------------------------
# The sweeps and their ground truth
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sweep:
    """One sweep of the book: ground truth per item, and the unit its scores come from.

    ``truth`` has columns ``group`` (the target a selection is made for; one group for a tasks
    sweep), ``candidate`` and ``truth`` (higher is better), and ``item`` (the key in the unit).
    """

    name: str
    chapter: str
    kind: str
    unit: str
    truth_label: str
    truth: pd.DataFrame

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")


def _pairs(table: pd.DataFrame, truth: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "group": table["target"],
            "candidate": table["source"],
            "truth": table[truth].astype(float),
            "item": table["source"] + "→" + table["target"],
        }
    )


def _tasks(table: pd.DataFrame, truth: str, name: str = "task") -> pd.DataFrame:
    return pd.DataFrame(
        {"group": "all", "candidate": table[name], "truth": table[truth], "item": table[name]}
    )


def _nce_sweeps(
    run: RunParams, _: BenchmarkPreset, progress: bool, executor: Executor | None
) -> list[Sweep]:
    table = nce.run_attribute_transfer(
        run, _preset(run, "nce"), progress=progress, executor=executor
    )
    truth = _pairs(table, "test_accuracy")
    label = "test accuracy of a linear SVM on the frozen source"
    return [Sweep("NCE attributes", "nce", "selection", "nce/attributes", label, truth)]


#: Short names in sweep names (they label the heatmaps' columns).
_SHORT = {
    "efficientnet_lite0": "lite0",
    "re-train head": "head",
    "fine-tune": "fine-tune",
}


def _leep_sweeps(
    run: RunParams, benchmark: BenchmarkPreset, progress: bool, executor: Executor | None
) -> list[Sweep]:
    preset = _preset(run, "leep")
    sweeps = []
    for setting in benchmark.leep_settings:
        table = leep.run_transfer(run, preset, setting, progress=progress, executor=executor)
        metric = "macro_f1" if setting.startswith("imbalanced") else "accuracy"
        for (source, method), part in table.groupby(["source", "method"], sort=False):
            sweeps.append(
                Sweep(
                    f"LEEP {setting}, {_SHORT.get(source, source)}, {_SHORT[method]}",
                    "leep",
                    "tasks",
                    f"leep/{setting}/{source}",
                    f"test {metric.replace('_', '-')} ({method})",
                    _tasks(part, metric),
                )
            )
    selection = leep.run_source_selection(run, preset, progress=progress, executor=executor)
    for method, column in zip(leep.METHODS, ("head_accuracy", "finetune_accuracy")):
        truth = pd.DataFrame(
            {
                "group": "full target",
                "candidate": selection["candidate"],
                "truth": selection[column],
                "item": selection["candidate"],
            }
        )
        label = f"test accuracy ({method})"
        name = f"LEEP model selection, {method}"
        sweeps.append(Sweep(name, "leep", "selection", "leep/selection", label, truth))
    return sweeps


def _hscore_sweeps(
    run: RunParams, _: BenchmarkPreset, progress: bool, executor: Executor | None
) -> list[Sweep]:
    preset = _preset(run, "hscore")
    layers = hscore.run_layer_transfer(run, preset, progress=progress, executor=executor)
    layer_truth = _tasks(layers, "test_accuracy", "layer").assign(group="layer task")
    targets = hscore.run_target_transfer(run, preset, progress=progress, executor=executor)
    world = hscore.run_task_transfer(run, preset, progress=progress, executor=executor)
    world = world[world["target"].isin(hscore.CLASSIFICATION_TASKS)]
    label = "test accuracy of a logistic head"
    return [
        Sweep("H-score layers", "hscore", "selection", "hscore/layers", label, layer_truth),
        Sweep("H-score targets", "hscore", "tasks", "hscore/targets", label,
              _tasks(targets, "test_accuracy")),
        Sweep("H-score task encoders", "hscore", "selection", "hscore/world",
              "test accuracy of a logistic head on the frozen encoder",
              _pairs(world, "affinity_accuracy")),
    ]  # fmt: skip


def _p2l_sweeps(
    run: RunParams, _: BenchmarkPreset, progress: bool, executor: Executor | None
) -> list[Sweep]:
    truth = p2l.run_ground_truth(run, _preset(run, "p2l"), progress=progress, executor=executor)
    label = "test accuracy of the fine-tuned source"
    return [Sweep("P2L sources", "p2l", "selection", "p2l/pairs", label, _pairs(truth, "accuracy"))]


_SWEEPS: dict[str, Callable[[RunParams, BenchmarkPreset, bool, Executor | None], list[Sweep]]] = {
    "nce": _nce_sweeps,
    "leep": _leep_sweeps,
    "hscore": _hscore_sweeps,
    "p2l": _p2l_sweeps,
}


def benchmark_sweeps(
    run: RunParams,
    preset: BenchmarkPreset,
    *,
    progress: bool = True,
    executor: Executor | None = None,
) -> list[Sweep]:
    """The sweeps of ``preset.chapters``, from the chapters' runners (cached, resumable; a cold
    cache computes them, which is the chapters' cost, not the benchmark's)."""
    return [s for c in preset.chapters for s in _SWEEPS[c](run, preset, progress, executor)]


# ------------------------------------------------------------------------------------------------
# Measures
# ------------------------------------------------------------------------------------------------


def _relative(scores: np.ndarray, truth: np.ndarray) -> float:
    """Rel@1, NaN where a candidate's truth is not positive (the ratio means nothing there)."""
    return relative_top_k_accuracy(scores, truth) if truth.min() > 0 else np.nan


def _correlation(
    fn: Callable[[Any, Any], tuple[float, Any]], s: np.ndarray, t: np.ndarray
) -> float:
    """The statistic, NaN where it is undefined (fewer than three items, a constant)."""
    if s.size < 3 or np.ptp(s) == 0 or np.ptp(t) == 0:
        return np.nan
    return float(fn(s, t)[0])


_STATISTICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "pearson": functools.partial(_correlation, pearson),
    "tau_w": functools.partial(_correlation, weighted_kendall),
    "relative_accuracy": _relative,
    "regret": top_k_regret,
}


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair of ``x`` and ``y`` (B, n); NaN where a row is constant."""
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    norms = np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, (x * y).sum(axis=1) / norms, np.nan)


def _weighted_tau_rows(x: np.ndarray, y: np.ndarray, chunk: int = 200) -> np.ndarray:
    """``scipy.stats.weightedtau(x[b], y[b]).statistic`` for every row ``b`` of ``(B, n)``
    arrays, vectorised (the bootstrap calls it thousands of times).

    As scipy's default: hyperbolic weights ``1 / (r + 1)`` of the rank ``r`` in decreasing
    lexicographic order, additive over a pair, the tau-b normalisation for ties, and the
    average of the values for the orders by ``(x, y)`` and by ``(y, x)``. NaN for a constant row.
    """
    if x.shape[0] > chunk:
        return np.concatenate(
            [
                _weighted_tau_rows(x[i : i + chunk], y[i : i + chunk])
                for i in range(0, len(x), chunk)
            ]
        )
    n = x.shape[1]
    upper = np.triu_indices(n, 1)
    sx = np.sign(x[:, :, None] - x[:, None, :])[:, upper[0], upper[1]]
    sy = np.sign(y[:, :, None] - y[:, None, :])[:, upper[0], upper[1]]
    total = np.zeros(len(x))
    for first, second in ((x, y), (y, x)):
        order = np.lexsort((-second, -first), axis=-1)
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.broadcast_to(np.arange(n), order.shape), axis=1)
        w = 1.0 / (rank + 1.0)
        pair = w[:, upper[0]] + w[:, upper[1]]
        numerator = (pair * sx * sy).sum(axis=1)
        norm = np.sqrt((pair * (sx != 0)).sum(axis=1) * (pair * (sy != 0)).sum(axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            total += numerator / norm
    return total / 2


def bootstrap_interval(draws: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile interval of bootstrap ``draws`` at coverage ``level``; NaN bounds when fewer
    than half the draws are defined (resamples with a constant input have no correlation)."""
    draws = np.asarray(draws, float)
    finite = draws[np.isfinite(draws)]
    if finite.size < draws.size / 2 or finite.size == 0:
        return np.nan, np.nan
    tail = (1 - level) / 2
    return float(np.quantile(finite, tail)), float(np.quantile(finite, 1 - tail))


def _task_draws(
    measure: str, scores: np.ndarray, truth: np.ndarray, picks: np.ndarray
) -> np.ndarray:
    """The measure on each resample (a row of ``picks``) of the tasks."""
    if measure == "pearson":
        return _pearson_rows(scores[picks], truth[picks])
    if measure == "tau_w":
        return _weighted_tau_rows(scores[picks], truth[picks])
    return np.array([_STATISTICS[measure](scores[p], truth[p]) for p in picks])


def _group_draws(values: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """The mean over targets of per-target values, on each resample of the targets."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
        return np.nanmean(values[picks], axis=1)


def _groups(table: pd.DataFrame, name: str) -> list[tuple[np.ndarray, np.ndarray]]:
    valid = table[np.isfinite(table[name].astype(float)) & np.isfinite(table["truth"])]
    return [
        (g[name].to_numpy(float), g["truth"].to_numpy(float))
        for _, g in valid.groupby("group", sort=False)
    ]


def _measures_of(
    kind: str,
    groups: list[tuple[np.ndarray, np.ndarray]],
    picks: Callable[[int], np.ndarray],
    level: float,
) -> dict[str, float]:
    """Point values and bootstrap bounds of :data:`MEASURES` on one sweep for one score."""
    row: dict[str, float] = {}
    for measure in MEASURES:
        point, low, high = np.nan, np.nan, np.nan
        if kind == "tasks" and measure in ("pearson", "tau_w") and groups:
            scores, truth = groups[0]
            point = _STATISTICS[measure](scores, truth)
            if np.isfinite(point):
                low, high = bootstrap_interval(
                    _task_draws(measure, scores, truth, picks(scores.size)), level
                )
        elif kind == "selection" and groups:
            values = np.array([_STATISTICS[measure](s, t) for s, t in groups])
            if np.isfinite(values).any():
                point = float(np.nanmean(values))
                if len(groups) > 1:
                    low, high = bootstrap_interval(_group_draws(values, picks(len(groups))), level)
        row |= {measure: point, f"{measure}_low": low, f"{measure}_high": high}
    return row


def _resampler(seed: int, sweep: str, n_boot: int) -> Callable[[int], np.ndarray]:
    """``n -> (n_boot, n)`` indices resampling ``n`` targets of the sweep: one named stream per
    sweep and ``n``, so the scores of a sweep with the same targets share their resamples."""

    def picks(n: int) -> np.ndarray:
        return rng(seed, "benchmark", "bootstrap", sweep, n).integers(0, n, size=(n_boot, n))

    return picks


def _reason(table: pd.DataFrame, name: str) -> str:
    errors = table[f"{name}_error"]  # read back from CSV, an empty message is NaN
    errors = errors[errors.notna()].astype(str)
    errors = errors[errors != ""]
    return errors.iloc[0] if len(errors) else ""


def score_measures(
    run: RunParams,
    preset: BenchmarkPreset,
    sweeps: Sequence[Sweep],
    scores: dict[str, pd.DataFrame],
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Every measure of every score on every sweep, with bootstrap intervals.

    Tasks sweeps: Pearson r and tau_w over the tasks, the tasks resampled. Selection sweeps:
    each measure per target (its candidates), averaged over the targets, the targets
    resampled; no interval with a single target.

    Parameters
    ----------
    run, preset
    sweeps : sequence of Sweep
    scores : dict
        Unit -> :func:`run_scores` table.
    names : sequence of str, optional
        Scores to measure (default: the preset's, :attr:`BenchmarkPreset.score_names`).

    Returns
    -------
    DataFrame
        One row per (sweep, score): ``sweep, chapter, kind, score, n_items, n_groups,
        reason`` (why the score has no value, or no measure, on the sweep; empty otherwise)
        and, for each of :data:`MEASURES`, the point value and ``_low``/``_high`` bounds (NaN
        where undefined: regret and relative accuracy on tasks sweeps, bounds with one target).
    """
    names = list(preset.score_names if names is None else names)
    rows = []
    with warnings.catch_warnings():
        # a score nearly constant over a sweep (NCE on tiny tasks) is measured as it is
        warnings.filterwarnings("ignore", "An input array is nearly constant")
        for sweep in sweeps:
            table = sweep.truth.merge(scores[sweep.unit], on="item", how="inner")
            picks = _resampler(run.seed, sweep.name, preset.n_boot)
            for name in names:
                groups = _groups(table, name)
                row = {
                    "sweep": sweep.name,
                    "chapter": sweep.chapter,
                    "kind": sweep.kind,
                    "score": name,
                    "n_items": sum(len(g[0]) for g in groups),
                    "n_groups": len(groups),
                    "reason": "" if groups else _reason(table, name),
                }
                row |= _measures_of(sweep.kind, groups, picks, preset.level)
                if groups and not np.isfinite(row["tau_w"]):
                    row["reason"] = _CONSTANT
                rows.append(row)
    return pd.DataFrame(rows)


def _tau_differences(
    sweep: Sweep, table: pd.DataFrame, first: str, second: str, picks: Callable[[int], np.ndarray]
) -> np.ndarray:
    """Bootstrap draws of tau_w(first) - tau_w(second) on the same resampled targets."""
    tau = _STATISTICS["tau_w"]
    table = table[np.isfinite(table[[first, second, "truth"]].astype(float)).all(axis=1)]
    a, b, t = (table[c].to_numpy(float) for c in (first, second, "truth"))
    if sweep.kind == "tasks":
        p = picks(len(table))
        return _weighted_tau_rows(a[p], t[p]) - _weighted_tau_rows(b[p], t[p])
    groups = [g.index for _, g in table.reset_index(drop=True).groupby("group", sort=False)]
    if len(groups) < 2:
        return np.array([np.nan])
    values = np.array([tau(a[g], t[g]) - tau(b[g], t[g]) for g in groups])
    return _group_draws(values, picks(len(groups)))


def winners(
    run: RunParams,
    preset: BenchmarkPreset,
    sweeps: Sequence[Sweep],
    scores: dict[str, pd.DataFrame],
    measures: pd.DataFrame,
) -> pd.DataFrame:
    """The best score of each sweep by tau_w, and whether it wins.

    Rule: the score with the largest tau_w *wins* a sweep when the bootstrap interval of its
    tau_w minus the runner-up's, over the same resampled targets, lies above zero; otherwise the
    sweep has no winner (the best two are not told apart by this many targets), as has a sweep
    with one target (no resampling of targets is possible). Scores tied at the top (the H-score
    and the normalised H-score order the candidates of one target alike) are best together,
    joined by " = ", and the runner-up is the next score below them.

    Returns
    -------
    DataFrame
        One row per sweep: ``sweep, best, tau_w, runner_up, runner_up_tau_w, difference_low,
        difference_high, winner`` (the best score's name, or ``"none"``).
    """
    rows = []
    for sweep in sweeps:
        part = measures[(measures["sweep"] == sweep.name) & np.isfinite(measures["tau_w"])]
        part = part.sort_values("tau_w", ascending=False, kind="stable")
        tied = (
            np.isclose(part["tau_w"], part["tau_w"].iloc[0], rtol=0, atol=1e-12)
            if len(part)
            else np.array([], bool)
        )
        if tied.all():
            continue
        best, second = part[tied], part[~tied].iloc[0]
        table = sweep.truth.merge(scores[sweep.unit], on="item", how="inner")
        picks = _resampler(run.seed, sweep.name, preset.n_boot)
        draws = _tau_differences(sweep, table, best["score"].iloc[0], second["score"], picks)
        low, high = bootstrap_interval(draws, preset.level)
        name = " = ".join(best["score"])
        rows.append(
            {
                "sweep": sweep.name,
                "best": name,
                "tau_w": best["tau_w"].iloc[0],
                "runner_up": second["score"],
                "runner_up_tau_w": second["tau_w"],
                "difference_low": low,
                "difference_high": high,
                "winner": name if np.isfinite(low) and low > 0 else "none",
            }
        )
    return pd.DataFrame(rows)


def timing_table(sweeps: Sequence[Sweep], scores: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Median wall time per item of each score on each chapter's inputs.

    Returns
    -------
    DataFrame
        One row per (chapter, score): ``chapter, score, items, seconds`` (in all),
        ``median_n_train`` (examples per task) and ``seconds_per_item``.
    """
    units = {s.unit: s.chapter for s in sweeps}
    rows = []
    for unit, chapter in units.items():
        table = scores[unit]
        for name in [c.removesuffix("_seconds") for c in table.columns if c.endswith("_seconds")]:
            seconds = table[f"{name}_seconds"].astype(float)
            seconds = seconds[np.isfinite(seconds)]
            if seconds.empty:
                continue
            rows.append(
                {
                    "chapter": chapter,
                    "unit": unit,
                    "score": name,
                    "items": int(seconds.size),
                    "seconds": float(seconds.sum()),
                    "median_n_train": float(table["n_train"].median()),
                }
            )
    table = pd.DataFrame(rows)
    return (
        table.groupby(["chapter", "score"], sort=False)
        .agg(items=("items", "sum"), seconds=("seconds", "sum"),
             median_n_train=("median_n_train", "median"))
        .assign(seconds_per_item=lambda t: t["seconds"] / t["items"])
        .reset_index()
    )  # fmt: skip


def score_summary(measures: pd.DataFrame, winners: pd.DataFrame) -> pd.DataFrame:
    """One row per score, best first: how often it is measured, its median tau_w, its mean rank
    among the scores measured on a sweep (1 = best), how often it is best and how often it wins.

    Returns
    -------
    DataFrame
        ``score, sweeps, median_tau_w, mean_rank, best, wins, median_regret`` (regret over the
        selection sweeps), sorted by ``mean_rank``.
    """
    measured = measures[np.isfinite(measures["tau_w"])].copy()
    measured["rank"] = measured.groupby("sweep")["tau_w"].rank(ascending=False, method="average")
    summary = measured.groupby("score", sort=False).agg(
        sweeps=("sweep", "size"),
        median_tau_w=("tau_w", "median"),
        mean_rank=("rank", "mean"),
        median_regret=("regret", "median"),
    )
    best = winners["best"].str.split(" = ").explode()
    summary["best"] = best.value_counts().reindex(summary.index, fill_value=0)
    decided = winners["winner"][winners["winner"] != "none"].str.split(" = ").explode()
    counted = decided.value_counts()
    summary["wins"] = counted.reindex(summary.index, fill_value=0)
    columns = ["sweeps", "median_tau_w", "mean_rank", "best", "wins", "median_regret"]
    return summary[columns].sort_values("mean_rank", kind="stable").reset_index()


def never_saturated(measures: pd.DataFrame, summary: pd.DataFrame, k: int = 3) -> list[str]:
    """The ``k`` best scores of ``summary`` (by mean rank) among those that were never constant
    over a sweep they had the inputs for: what to recommend for a reader's own data, where a
    score that saturates (the H-scores and SFDA with fewer examples than feature dimensions)
    would tie every candidate.

    A score without an input on a sweep (LEEP and NCE without a source classifier) is not
    counted against it; the sweeps where every score is undefined are ignored.
    """
    check_int(k, "k", minimum=1)
    undefined = measures[measures["reason"] == _CONSTANT]
    measured = set(measures.loc[measures["reason"] == "", "sweep"])
    saturated = set(undefined.loc[undefined["sweep"].isin(measured), "score"])
    return [name for name in summary["score"] if name not in saturated][:k]


def sweeps_table(sweeps: Sequence[Sweep], scores: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per sweep: ``sweep, kind, targets, candidates`` (scored items), ``truth``
    (what the ground truth measures) and ``examples`` (median training examples scored)."""
    rows = []
    for sweep in sweeps:
        table = sweep.truth.merge(scores[sweep.unit], on="item", how="inner")
        rows.append(
            {
                "sweep": sweep.name,
                "kind": sweep.kind,
                "targets": table["group"].nunique() if sweep.kind == "selection" else len(table),
                "candidates": len(table),
                "truth": sweep.truth_label,
                "examples": int(table["n_train"].median()),
            }
        )
    return pd.DataFrame(rows)


def run_benchmark(
    run: RunParams,
    preset: BenchmarkPreset,
    *,
    progress: bool = True,
    executor: Executor | None = None,
) -> tuple[list[Sweep], dict[str, pd.DataFrame], pd.DataFrame]:
    """The sweeps, every score on each of their units, and the measures (see module docstring).

    ``executor`` runs the chapters' sweeps where a cold cache must compute them; the scores are
    computed in this process, so that their wall times are comparable.

    Returns
    -------
    (sweeps, scores, measures)
        :func:`benchmark_sweeps`, unit -> :func:`run_scores` table, :func:`score_measures`.
    """
    sweeps = benchmark_sweeps(run, preset, progress=progress, executor=executor)
    units = list(dict.fromkeys(s.unit for s in sweeps))
    # the scores are computed in this process, one after the other, so that each one's wall
    # time is taken with nothing else of the benchmark running
    scores = {
        u: run_scores(
            run,
            u,
            preset.score_names,
            max_tasks=preset.max_tasks,
            max_train=preset.max_train,
            progress=progress,
        )
        for u in units
    }
    return sweeps, scores, score_measures(run, preset, sweeps, scores)
