"""Experiments of Bhattacharjee et al. (2020), P2L: which source dataset to fine-tune from.

P2L ranks candidate source datasets for a target by the *embedding divergence*
``E(t, s) = z(log |s|) + k z(D(t, s))`` (eq. 2): the source's size against the divergence ``D``
between mean reference-model features of the two datasets, with ``k`` fitted once on a training
group of targets. The runners reproduce the paper's image experiments on the shared layer:

* :func:`p2l_tasks` -- the pool of source domains cut along the hierarchies of the data (script,
  case, font family, style; scikit-learn's digits as a dataset of its own), each split into the
  four parts of §4.1, and the training-group and held-out targets;
* :func:`run_sources` -- one source network per domain, all of one architecture;
* :func:`run_references` / :func:`run_ground_truth` -- eq. 1: every source fine-tuned on every
  target, against the same architecture trained from random initialisation on the target;
* :func:`run_divergences` -- dataset embeddings from the reference model and the five
  divergences for every (source, target) pair;
* :func:`fit_predictor` / :func:`evaluate_predictor` -- ``k`` and the divergence chosen on the
  training group by mean top-T Spearman (Fig. 1), then frozen and tested on held-out targets
  against the paper's five baselines (Tables 1-3, Fig. 7);
* :func:`run_merged_sources` -- §4.3.3 / Fig. 8: a source trained on the union of all sources
  against the standard source, on many small user-like tasks and several learning rates.

The predictor itself is modality-agnostic: :func:`reference_embedding` turns any callable that
maps a batch of inputs to non-negative features into P2L's dataset summary, and
:func:`embedding_divergences` / :func:`rank_sources` only see vectors and sizes.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from transferlib.config import RunParams, register_presets
from transferlib.data import ImageDataset, TaskSpec, load_dataset
from transferlib.data.digits import resize_images
from transferlib.data.tasks import GLYPHS_DOMAINS, p2l_domains, p2l_targets
from transferlib.evaluation import spearman
from transferlib.experiments.presets import GLYPHS, DataSpec, Preset, TrainingSpec, scaled
from transferlib.experiments.protocols import fine_tune_network, reference_network
from transferlib.experiments.sources import (
    Network,
    network_outputs,
    pretrained_network,
    run_dataset,
    train_network,
)
from transferlib.experiments.sweep import result_store, run_sweep
from transferlib.scores.p2l import METRICS, KFit, dataset_embedding, divergence, fit_k
from transferlib.scores.p2l import embedding_divergence as p2l_score

__all__ = [
    "BASELINES",
    "HELD_OUT_SLICES",
    "PRESETS",
    "P2LFit",
    "P2LPreset",
    "P2LTasks",
    "dataset_embeddings",
    "embedding_divergences",
    "evaluate_predictor",
    "fit_predictor",
    "p2l_datasets",
    "p2l_tasks",
    "picks_to_best",
    "plateau_centre",
    "rank_sources",
    "reference_embedding",
    "relative_gains",
    "run_divergences",
    "run_ground_truth",
    "run_merged_sources",
    "run_references",
    "run_sources",
    "source_network",
    "tasks_table",
    "user_tasks",
]

_MODULE = __name__

#: Held-out targets that cross two hierarchies (script x style or family): datasets none of the
#: pool's domains equals, as the paper's evaluation datasets (CUBS, DTD, ...) were none of its
#: ImageNet-22K domains.
HELD_OUT_SLICES: dict[str, dict[str, list[str]]] = {
    f"{script}_{name}": {"script": [script], **where}
    for script in ("latin_upper", "latin_lower", "greek_lower", "digit", "symbol")
    for name, where in (
        ("bold", {"style": ["bold", "bold_italic"]}),
        ("italic", {"style": ["italic", "bold_italic"]}),
        ("serif", {"font_family": ["dejavu_serif", "stix"]}),
        ("mono", {"font_family": ["dejavu_mono"]}),
    )
}

#: The paper's baselines (Table 3), in its order.
BASELINES = {
    "B1": "largest source",
    "B2": "standard source",
    "B3": "random source (expected)",
    "B4": "no transfer",
    "B5": "least divergent source",
}

_DIGITS = "digits"


@dataclass(frozen=True)
class P2LPreset(Preset):
    """Settings of the chapter "Choosing a source dataset (Bhattacharjee et al. 2020)".

    Attributes
    ----------
    data : DataSpec
        The Glyphs images (the book's shared set of the scale); the reference model sees them
        at ``data.pretrained_input_size``.
    network_image_size : int
        Side the source and target networks see the images at (the shared set, downsampled).
    parts : tuple of four floats
        Shares of the four parts of every domain (§4.1: train source, validate source, target,
        validate target; the paper's are equal).
    sources : tuple of str
        Glyphs domains in the pool (keys of :data:`~transferlib.data.tasks.GLYPHS_DOMAINS`).
    digits_source : bool
        Add scikit-learn's digits as one more source, a dataset of its own (Places' part).
    standard_source : str
        The general-purpose source of baseline B2 and of the merged-source experiment, standing
        in for ImageNet-1K.
    standard_fraction : float
        Share of its domain's source part the standard source trains on (outside the ladder:
        a standard source is a large one).
    training_targets : tuple of str
        Pool domains whose targets form the training group that fits ``k`` (the paper's nine).
    evaluation_targets : tuple of str
        Held-out targets (keys of :data:`HELD_OUT_SLICES` or of ``GLYPHS_DOMAINS`` outside the
        pool), never used to fit anything.
    min_fraction, min_per_class : float, int
        The sources' size ladder (see :func:`~transferlib.data.tasks.p2l_domains`).
    target_fraction, held_out_fraction : float
        Share of a domain's target part that a training-group target / held-out target trains
        on (the paper: one tenth).
    max_validate : int or None
        Cap on every validation set.
    source_training, fine_tuning, reference_training : TrainingSpec
        The sources (``epochs`` is their minimum, see ``source_steps``); fine-tuning a source on a target (every layer, backbone at
        ``backbone_lr_multiplier``); the same architecture from random initialisation on the
        target (the paper's ``M(t, phi)``).
    source_steps, max_source_epochs : int
        Every source trains for about ``source_steps`` SGD steps (small sources for more
        epochs), between ``source_training.epochs`` and ``max_source_epochs`` epochs.
    reference_model : str
        Packaged network whose penultimate features summarise a dataset (the paper: VGG-16 fc7).
    metrics : tuple of str
        Divergences compared on the training group.
    top : int
        T of the top-T Spearman criterion that fits ``k``.
    k_grid : tuple of float
        Candidate values of ``k``.
    n_user_tasks, user_images : int
        Small user-like tasks of the merged-source experiment and their training images.
    user_class_range : tuple of int
        Their number of classes.
    user_slices : tuple of str
        Domains the user tasks draw their classes from.
    user_learning_rates : tuple of float
        Learning-rate regimes of the merged-source experiment (the paper: eight).
    """

    data: DataSpec
    network_image_size: int
    parts: tuple[float, float, float, float]
    sources: tuple[str, ...]
    digits_source: bool
    standard_source: str
    standard_fraction: float
    training_targets: tuple[str, ...]
    evaluation_targets: tuple[str, ...]
    min_fraction: float
    min_per_class: int
    target_fraction: float
    held_out_fraction: float
    max_validate: int | None
    source_training: TrainingSpec
    fine_tuning: TrainingSpec
    reference_training: TrainingSpec
    source_steps: int
    max_source_epochs: int
    reference_model: str = "efficientnet_lite0"
    metrics: tuple[str, ...] = METRICS
    top: int = 3
    k_grid: tuple[float, ...] = tuple(float(k) for k in np.round(np.linspace(-4, 2, 61), 2))
    n_user_tasks: int = 16
    user_images: int = 200
    user_class_range: tuple[int, int] = (2, 60)
    user_slices: tuple[str, ...] = (
        "latin_upper",
        "latin_lower",
        "greek_upper",
        "greek_lower",
        "digit",
        "symbol",
    )
    user_learning_rates: tuple[float, ...] = (0.01, 0.03, 0.1)


BOOK = P2LPreset(
    data=GLYPHS["book"],
    network_image_size=16,
    parts=(0.6, 0.1, 0.2, 0.1),
    sources=(
        "latin_upper",
        "latin_lower",
        "greek_lower",
        "digit",
        "symbol",
        "dejavu_mono",
        "bold",
        "general",
    ),
    digits_source=True,
    standard_source="general",
    standard_fraction=0.4,
    training_targets=("latin_upper", "greek_lower", "symbol", "bold", "general"),
    evaluation_targets=(
        "greek_upper",
        "upper_case",
        "stix",
        "italic",
        "regular",
        "latin_upper_italic",
        "latin_upper_bold",
        "greek_lower_serif",
        "greek_lower_italic",
        "computer_modern",
    ),
    min_fraction=1 / 32,
    min_per_class=6,
    target_fraction=0.3,
    held_out_fraction=0.6,
    max_validate=300,
    source_training=TrainingSpec(model="small_cnn", epochs=60, lr=0.1, batch_size=32, width=16),
    fine_tuning=TrainingSpec(
        model="small_cnn", epochs=20, lr=0.05, batch_size=32, width=16, backbone_lr_multiplier=0.1
    ),
    reference_training=TrainingSpec(model="small_cnn", epochs=60, lr=0.05, batch_size=32, width=16),
    source_steps=1000,
    max_source_epochs=300,
    n_user_tasks=12,
)
PRESETS: dict[str, P2LPreset] = scaled(
    BOOK,
    smoke={
        "data": GLYPHS["smoke"],
        "sources": ("latin_upper", "greek_lower", "digit", "bold", "general"),
        "digits_source": False,
        "training_targets": ("latin_upper", "greek_lower", "bold"),
        "evaluation_targets": ("upper_case", "italic", "latin_lower_bold"),
        "min_fraction": 1 / 4,
        "min_per_class": 2,
        "target_fraction": 0.5,
        "held_out_fraction": 1.0,
        "max_validate": 100,
        "source_training": {"epochs": 3, "width": 8},
        "fine_tuning": {"epochs": 2, "width": 8},
        "reference_training": {"epochs": 3, "width": 8},
        "source_steps": 20,
        "max_source_epochs": 6,
        "top": 3,
        "n_user_tasks": 3,
        "user_images": 40,
        "user_class_range": (2, 5),
        "user_learning_rates": (0.03, 0.1),
    },
    full={
        "data": GLYPHS["full"],
        "network_image_size": 32,
        "parts": (0.25, 0.25, 0.25, 0.25),
        "sources": tuple(GLYPHS_DOMAINS),
        "training_targets": (
            "latin_upper",
            "latin_lower",
            "greek_upper",
            "greek_lower",
            "digit",
            "symbol",
            "dejavu_mono",
            "computer_modern",
            "bold",
        ),
        "evaluation_targets": tuple(HELD_OUT_SLICES)[:14],
        "min_fraction": 1 / 128,
        "target_fraction": 0.1,
        "held_out_fraction": 1.0,
        "max_validate": None,
        "source_training": {"model": "resnet20", "width": None, "epochs": 30, "lr": 0.1},
        "source_steps": 20_000,
        "max_source_epochs": 300,
        "fine_tuning": {"model": "resnet20", "width": None, "epochs": 30, "lr": 0.01},
        "reference_training": {"model": "resnet20", "width": None, "epochs": 30, "lr": 0.05},
        "top": 4,
        "n_user_tasks": 71,
        "user_learning_rates": (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2),
    },
)
register_presets("p2l", PRESETS, datasets=("glyphs",))


# ------------------------------------------------------------------------------------------------
# The predictor, for any modality
# ------------------------------------------------------------------------------------------------


def reference_embedding(
    reference: Callable[[Any], Any], inputs: Any, *, batch_size: int = 256
) -> np.ndarray:
    """P2L's dataset summary ``F(d)``: mean reference features, L1-normalised (§3.2).

    Parameters
    ----------
    reference : callable
        Maps a batch of inputs (a slice of ``inputs``) to a ``(batch, d)`` array or tensor of
        non-negative features: a network's penultimate layer, a bag of words, anything.
    inputs : sequence or array
        The dataset's inputs; sliced into batches of ``batch_size``.

    Returns
    -------
    numpy.ndarray of shape (d,)
        See :func:`transferlib.scores.p2l.dataset_embedding`.
    """
    if not callable(reference):
        raise TypeError(f"reference must be callable, got {type(reference).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    n = len(inputs)
    if n == 0:
        raise ValueError("inputs is empty")
    parts = []
    for start in range(0, n, batch_size):
        batch = np.asarray(reference(inputs[start : start + batch_size]), dtype=np.float64)
        if batch.ndim != 2 or batch.shape[0] != min(batch_size, n - start):
            raise ValueError(
                f"reference must return one feature row per input, got shape {batch.shape}"
            )
        parts.append(batch)
    return dataset_embedding(np.concatenate(parts))


def embedding_divergences(
    source_embeddings: Mapping[str, np.ndarray],
    target_embeddings: Mapping[str, np.ndarray],
    metrics: Sequence[str] = METRICS,
) -> pd.DataFrame:
    """``D(t, s)`` for every target, source and metric.

    Returns
    -------
    DataFrame
        One row per (target, source): ``target, source`` and one column per metric.
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {METRICS}")
    if not source_embeddings or not target_embeddings:
        raise ValueError("need at least one source and one target embedding")
    names = list(source_embeddings)
    stacked = np.stack([np.asarray(source_embeddings[s]) for s in names])
    rows = []
    for target, embedding in target_embeddings.items():
        values = {m: divergence(embedding, stacked, m) for m in metrics}
        for j, source in enumerate(names):
            rows.append({"target": target, "source": source, **{m: values[m][j] for m in metrics}})
    return pd.DataFrame(rows)


def rank_sources(
    sizes: Mapping[str, float], divergences: Mapping[str, float], k: float
) -> pd.DataFrame:
    """P2L's ranking of the sources for one target: ``E`` (eq. 2), larger first.

    Parameters
    ----------
    sizes : mapping
        Source name -> number of training images ``|s|``.
    divergences : mapping
        Source name -> ``D(t, s)`` (the same sources).
    k : float
        The fitted balance (negative in practice: divergence works against size).

    Returns
    -------
    DataFrame
        ``source, size, divergence, E, rank`` (1 = P2L's pick), sorted by rank.
    """
    if set(sizes) != set(divergences):
        raise ValueError("sizes and divergences must name the same sources")
    names = list(sizes)
    e = p2l_score([sizes[s] for s in names], [divergences[s] for s in names], k)
    table = pd.DataFrame(
        {
            "source": names,
            "size": [sizes[s] for s in names],
            "divergence": [divergences[s] for s in names],
            "E": e,
        }
    )
    table = table.sort_values("E", ascending=False, kind="stable").reset_index(drop=True)
    table["rank"] = np.arange(1, len(table) + 1)
    return table


def picks_to_best(order: Sequence[str], accuracy: Mapping[str, float]) -> int:
    """How many sources, tried in ``order``, until one with the best accuracy is among them."""
    best = max(accuracy.values())
    for position, source in enumerate(order, start=1):
        if accuracy[source] >= best:
            return position
    raise ValueError("order does not contain a source of accuracy")


# ------------------------------------------------------------------------------------------------
# Data and tasks
# ------------------------------------------------------------------------------------------------


def _glyphs(run: RunParams, preset: P2LPreset) -> ImageDataset:
    """The book's shared Glyphs set of the scale, as rendered (what the reference model sees)."""
    return run_dataset(run, preset.data)


@functools.lru_cache(maxsize=4)
def _digits(seed: int, image_size: int) -> ImageDataset:
    return load_dataset(_DIGITS, seed=seed, image_size=image_size, channels=3)


@functools.lru_cache(maxsize=4)
def _network_view(run: RunParams, preset: P2LPreset) -> ImageDataset:
    glyphs = _glyphs(run, preset)
    return dataclasses.replace(
        glyphs, images=resize_images(glyphs.images, preset.network_image_size), masks=None
    )


def p2l_datasets(run: RunParams, preset: P2LPreset) -> dict[str, ImageDataset]:
    """The datasets the networks train on, by name, at ``preset.network_image_size``.

    Glyphs is the book's shared set of the scale, downsampled; scikit-learn's digits (with
    ``preset.digits_source``) is resized to the same size. The reference model sees the
    images as rendered instead (:func:`dataset_embeddings`).
    """
    datasets = {"glyphs": _network_view(run, preset)}
    if preset.digits_source:
        datasets[_DIGITS] = _digits(run.seed, preset.network_image_size)
    return datasets


@dataclass(frozen=True)
class P2LTasks:
    """The chapter's tasks by name.

    ``sources`` are the pool's source tasks (``source-<domain>``, with the digits source last);
    ``training`` and ``evaluation`` the two groups of targets; ``merged`` the union of the
    Glyphs sources (§4.3.3).
    """

    sources: dict[str, TaskSpec]
    training: dict[str, TaskSpec]
    evaluation: dict[str, TaskSpec]
    merged: TaskSpec

    @property
    def targets(self) -> dict[str, TaskSpec]:
        """Both groups of targets, training group first."""
        return {**self.training, **self.evaluation}


def _check_names(preset: P2LPreset) -> None:
    unknown = [d for d in preset.sources if d not in GLYPHS_DOMAINS]
    if unknown:
        raise ValueError(f"unknown source domain(s) {unknown}; valid: {list(GLYPHS_DOMAINS)}")
    if preset.standard_source not in preset.sources:
        raise ValueError(f"standard_source {preset.standard_source!r} is not in the pool")
    outside = [t for t in preset.training_targets if t not in preset.sources]
    if outside:
        raise ValueError(f"training targets {outside} are not pool domains")
    slices = {**GLYPHS_DOMAINS, **HELD_OUT_SLICES}
    bad = [t for t in preset.evaluation_targets if t not in slices or t in preset.sources]
    if bad:
        raise ValueError(f"evaluation targets {bad} are unknown or pool domains")


@functools.lru_cache(maxsize=4)
def _tasks(run: RunParams, preset: P2LPreset) -> P2LTasks:
    _check_names(preset)
    datasets = p2l_datasets(run, preset)
    glyphs = _glyphs(run, preset)
    common = {"parts": preset.parts, "max_validate": preset.max_validate, "seed": run.seed}
    pool = p2l_domains(
        glyphs,
        {name: GLYPHS_DOMAINS[name] for name in preset.sources},
        min_fraction=preset.min_fraction,
        min_per_class=preset.min_per_class,
        fractions={preset.standard_source: preset.standard_fraction},
        target_fraction=preset.target_fraction,
        **common,
    )
    slices = {**GLYPHS_DOMAINS, **HELD_OUT_SLICES}
    held_out = p2l_domains(
        glyphs,
        {name: slices[name] for name in preset.evaluation_targets},
        min_fraction=1.0,
        min_per_class=1,
        target_fraction=preset.held_out_fraction,
        **common,
    )
    sources = {s.params["domain"]: s for s in pool if s.params["part"] == "source"}
    if preset.digits_source:
        digits = p2l_domains(datasets[_DIGITS], {_DIGITS: {}}, min_fraction=1.0, **common)
        sources[_DIGITS] = digits[0]
    targets = {s.params["domain"]: s for s in pool if s.params["part"] == "target"}
    glyph_sources = [s for name, s in sources.items() if name != _DIGITS]
    merged_train = np.unique(np.concatenate([s.train_indices for s in glyph_sources]))
    merged_test = np.unique(np.concatenate([s.test_indices for s in glyph_sources]))
    classes = np.unique(glyphs.column("char")[merged_train])
    merged = TaskSpec(
        name="source-merged",
        target="char",
        kind="p2l_source",
        classes=tuple(int(c) for c in classes),
        train_indices=merged_train,
        test_indices=merged_test,
        params={
            "dataset": glyphs.name,
            "domain": "merged",
            "part": "source",
            "size": int(merged_train.size),
            "members": [s.params["domain"] for s in glyph_sources],
            "n_characters": len(glyphs.label_names["char"]),
        },
    )
    return P2LTasks(
        sources=sources,
        training={name: targets[name] for name in preset.training_targets},
        evaluation={s.params["domain"]: s for s in held_out if s.params["part"] == "target"},
        merged=merged,
    )


def p2l_tasks(run: RunParams, preset: P2LPreset) -> P2LTasks:
    """The pool of sources and the two groups of targets (built once per process)."""
    return _tasks(run, preset)


def _dataset_of(run: RunParams, preset: P2LPreset, spec: TaskSpec) -> ImageDataset:
    return p2l_datasets(run, preset)[spec.params["dataset"]]


def tasks_table(run: RunParams, preset: P2LPreset) -> pd.DataFrame:
    """One row per source and target: role, dataset, classes, training and validation images."""
    tasks = p2l_tasks(run, preset)
    groups = (
        ("source", tasks.sources),
        ("training target", tasks.training),
        ("held-out target", tasks.evaluation),
    )
    rows = []
    for role, specs in groups:
        for name, spec in specs.items():
            rows.append(
                {
                    "name": name,
                    "role": role,
                    "dataset": spec.params["dataset"],
                    "classes": spec.num_classes,
                    "train_images": len(spec.train_indices),
                    "validate_images": len(spec.test_indices),
                }
            )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------
# Networks: sources, references, fine-tuning (eq. 1)
# ------------------------------------------------------------------------------------------------


def source_network(
    run: RunParams, preset: P2LPreset, name: str, *, progress: bool = False
) -> Network:
    """The source network of pool domain ``name`` (or ``"merged"``), trained or from the cache."""
    tasks = p2l_tasks(run, preset)
    spec = tasks.merged if name == "merged" else tasks.sources[name]
    dataset = _dataset_of(run, preset, spec)
    training = source_training(preset, len(spec.train_indices))
    return train_network(run, dataset, spec, training, progress=progress)


def source_training(preset: P2LPreset, size: int) -> TrainingSpec:
    """The training of a source of ``size`` images: about ``preset.source_steps`` SGD steps."""
    spec = preset.source_training
    epochs = int(np.ceil(preset.source_steps * spec.batch_size / max(size, 1)))
    return spec.replace({"epochs": int(np.clip(epochs, spec.epochs, preset.max_source_epochs))})


def _source_row(run: RunParams, preset: P2LPreset, progress: bool, name: str) -> dict[str, Any]:
    tasks = p2l_tasks(run, preset)
    spec = tasks.merged if name == "merged" else tasks.sources[name]
    network = source_network(run, preset, name, progress=progress)
    summary = network.summary()
    return {
        "source": name,
        "dataset": spec.params["dataset"],
        "classes": spec.num_classes,
        "size": len(spec.train_indices),
        "validate_images": len(spec.test_indices),
        **{k: summary[k] for k in ("epochs", "train_accuracy", "test_accuracy")},
        "majority_accuracy": network.majority_accuracy,
        "beats_baseline": network.beats_baseline(),
        "seconds": summary["seconds"],
    }


def run_sources(
    run: RunParams,
    preset: P2LPreset,
    *,
    merged: bool = False,
    progress: bool = True,
    executor: Executor | None = None,
) -> pd.DataFrame:
    """Train one source network per pool domain (and the merged source with ``merged``).

    Returns
    -------
    DataFrame
        One row per source: ``source, dataset, classes, size (training images),
        validate_images, epochs, train_accuracy, test_accuracy (on the source's validation
        part), majority_accuracy, beats_baseline, seconds``.
    """
    names = list(p2l_tasks(run, preset).sources) + (["merged"] if merged else [])
    store = result_store(run, _MODULE, "sources", ("source",), preset)
    return run_sweep(
        store,
        names,
        functools.partial(_source_row, run, preset, progress),
        keys=lambda name: [{"source": name}],
        executor=executor,
        progress=progress,
        desc="P2L sources",
    )


def _reference_row(run: RunParams, preset: P2LPreset, progress: bool, name: str) -> dict[str, Any]:
    tasks = p2l_tasks(run, preset)
    spec = tasks.targets[name]
    network = reference_network(
        run, _dataset_of(run, preset, spec), spec, preset.reference_training, progress=progress
    )
    return {
        "target": name,
        "group": "training" if name in tasks.training else "evaluation",
        "classes": spec.num_classes,
        "train_images": len(spec.train_indices),
        "validate_images": len(spec.test_indices),
        "reference_accuracy": network.test_accuracy,
        "majority_accuracy": network.majority_accuracy,
        "beats_baseline": network.beats_baseline(),
        "seconds": float(network.history["seconds"].iloc[-1]),
    }


def run_references(
    run: RunParams, preset: P2LPreset, *, progress: bool = True, executor: Executor | None = None
) -> pd.DataFrame:
    """The no-transfer model ``M(t, phi)`` of every target: random initialisation, same network.

    Returns
    -------
    DataFrame
        One row per target: ``target, group ("training"/"evaluation"), classes, train_images,
        validate_images, reference_accuracy, majority_accuracy, beats_baseline, seconds``.
    """
    store = result_store(run, _MODULE, "references", ("target",), preset)
    return run_sweep(
        store,
        list(p2l_tasks(run, preset).targets),
        functools.partial(_reference_row, run, preset, progress),
        keys=lambda name: [{"target": name}],
        executor=executor,
        progress=progress,
        desc="P2L references",
    )


def _fine_tune(
    run: RunParams,
    preset: P2LPreset,
    source: str,
    spec: TaskSpec,
    training: TrainingSpec,
    progress: bool,
) -> Network:
    network = source_network(run, preset, source, progress=progress)
    return fine_tune_network(
        run, _dataset_of(run, preset, spec), network, spec, training, progress=progress
    )


def _pair_row(
    run: RunParams, preset: P2LPreset, progress: bool, pair: tuple[str, str]
) -> dict[str, Any]:
    source, target = pair
    tasks = p2l_tasks(run, preset)
    spec = tasks.targets[target]
    tuned = _fine_tune(run, preset, source, spec, preset.fine_tuning, progress)
    return {
        "source": source,
        "target": target,
        "accuracy": tuned.test_accuracy,
        "train_accuracy": tuned.train_accuracy,
        "majority_accuracy": tuned.majority_accuracy,
        "seconds": float(tuned.history["seconds"].iloc[-1]),
    }


def run_ground_truth(
    run: RunParams, preset: P2LPreset, *, progress: bool = True, executor: Executor | None = None
) -> pd.DataFrame:
    """Eq. 1 for every (source, target): fine-tuned accuracy minus the no-transfer accuracy.

    Every source network is fine-tuned on every target of both groups (resumable pair by pair).

    Returns
    -------
    DataFrame
        One row per (source, target): ``source, target, group, accuracy (top-1 on the target's
        validation part), reference_accuracy, improvement (= I(t, s)), size (|s|),
        majority_accuracy, train_accuracy, seconds``.
    """
    tasks = p2l_tasks(run, preset)
    sizes = {name: len(spec.train_indices) for name, spec in tasks.sources.items()}
    run_sources(run, preset, progress=progress, executor=executor)
    references = run_references(run, preset, progress=progress, executor=executor)
    pairs = [(s, t) for t in tasks.targets for s in tasks.sources]
    store = result_store(run, _MODULE, "ground-truth", ("source", "target"), preset)
    table = run_sweep(
        store,
        pairs,
        functools.partial(_pair_row, run, preset, progress),
        keys=lambda pair: [{"source": pair[0], "target": pair[1]}],
        executor=executor,
        progress=progress,
        desc="P2L fine-tuning",
    )
    table = table.merge(references[["target", "group", "reference_accuracy"]], on="target")
    table["improvement"] = table["accuracy"] - table["reference_accuracy"]
    table["size"] = table["source"].map(sizes)
    columns = [
        "source",
        "target",
        "group",
        "accuracy",
        "reference_accuracy",
        "improvement",
        "size",
        "majority_accuracy",
        "train_accuracy",
        "seconds",
    ]
    return table[columns]


# ------------------------------------------------------------------------------------------------
# Embeddings and divergences
# ------------------------------------------------------------------------------------------------


def _reference_features(run: RunParams, preset: P2LPreset) -> dict[str, np.ndarray]:
    """Reference-model features of every image of every dataset (cached, shared by chapters)."""
    network = pretrained_network(
        preset.reference_model, preset.data.pretrained_input_size, device=run.device
    )
    rendered = {"glyphs": _glyphs(run, preset)}
    if preset.digits_source:
        rendered[_DIGITS] = _digits(run.seed, preset.data.image_size)
    return {
        name: network_outputs(run, network, dataset.images, ("features",))["features"]
        for name, dataset in rendered.items()
    }


def _embedding(features: Mapping[str, np.ndarray], spec: TaskSpec) -> np.ndarray:
    rows = np.asarray(spec.train_indices)
    return reference_embedding(lambda batch: features[spec.params["dataset"]][batch], rows)


def dataset_embeddings(run: RunParams, preset: P2LPreset) -> dict[str, np.ndarray]:
    """``F(d)`` of every source and target (by task name) from the reference model."""
    tasks = p2l_tasks(run, preset)
    features = _reference_features(run, preset)
    specs = {**{f"source-{n}": s for n, s in tasks.sources.items()}}
    specs.update({f"target-{n}": s for n, s in tasks.targets.items()})
    return {name: _embedding(features, spec) for name, spec in specs.items()}


def run_divergences(run: RunParams, preset: P2LPreset) -> pd.DataFrame:
    """``D(t, s)`` of every (source, target) pair under every metric of the preset.

    The reference model runs once over each dataset's images (cached per image set and shared
    with the other chapters); a dataset's embedding is its training images' mean feature.

    Returns
    -------
    DataFrame
        One row per (source, target): ``source, target, group, size`` and one column per
        metric.
    """
    tasks = p2l_tasks(run, preset)
    embeddings = dataset_embeddings(run, preset)
    table = embedding_divergences(
        {name: embeddings[f"source-{name}"] for name in tasks.sources},
        {name: embeddings[f"target-{name}"] for name in tasks.targets},
        preset.metrics,
    )
    table["group"] = np.where(table["target"].isin(list(tasks.training)), "training", "evaluation")
    table["size"] = table["source"].map({n: len(s.train_indices) for n, s in tasks.sources.items()})
    return table[["source", "target", "group", "size", *preset.metrics]]


# ------------------------------------------------------------------------------------------------
# Fitting k, and evaluating the frozen predictor
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class P2LFit:
    """``k`` per divergence on the training group, and the chosen divergence.

    Attributes
    ----------
    fits : dict
        Metric -> :class:`~transferlib.scores.p2l.KFit` (the criterion over the grid, Fig. 1).
    metric : str
        The divergence whose best criterion is highest (ties: the first in ``preset.metrics``).
    k : float
        Its fitted ``k`` (:func:`plateau_centre` of its criterion), frozen for the held-out
        targets.
    """

    fits: dict[str, KFit]
    metric: str
    k: float

    def curves(self) -> pd.DataFrame:
        """Long table of the criterion: ``metric, k, mean_spearman`` (Fig. 1)."""
        return pd.concat(
            [
                pd.DataFrame({"metric": m, "k": f.grid, "mean_spearman": f.mean_spearman})
                for m, f in self.fits.items()
            ],
            ignore_index=True,
        )

    def summary(self) -> pd.DataFrame:
        """One row per metric: fitted ``k``, best criterion, and the criterion at ``k = 0``."""
        rows = []
        for metric, fit in self.fits.items():
            at_zero = float(np.interp(0.0, fit.grid, fit.mean_spearman))
            rows.append(
                {
                    "metric": metric,
                    "k": plateau_centre(fit),
                    "mean_top_spearman": float(fit.mean_spearman.max()),
                    "size_only": at_zero,
                    "chosen": metric == self.metric,
                }
            )
        return pd.DataFrame(rows)


def _matrix(table: pd.DataFrame, value: str, targets: Sequence[str], sources: Sequence[str]):
    pivot = table.pivot(index="target", columns="source", values=value)
    return pivot.loc[list(targets), list(sources)].to_numpy(dtype=np.float64)


def fit_predictor(
    ground_truth: pd.DataFrame, divergences: pd.DataFrame, preset: P2LPreset
) -> P2LFit:
    """Fit ``k`` for every divergence on the training group; keep the best divergence (§4.3.1).

    For each metric, :func:`~transferlib.scores.p2l.fit_k` maximises the mean over training
    targets of the Spearman correlation between ``E`` and the measured improvement over each
    target's ``preset.top`` best sources.
    """
    training = ground_truth[ground_truth["group"] == "training"]
    if training.empty:
        raise ValueError("ground_truth has no training-group rows")
    targets = list(dict.fromkeys(training["target"]))
    sources = list(dict.fromkeys(training["source"]))
    improvement = _matrix(training, "improvement", targets, sources)
    sizes = training.groupby("source")["size"].first().loc[sources].to_numpy(dtype=np.float64)
    fits = {}
    for metric in preset.metrics:
        d = _matrix(divergences, metric, targets, sources)
        fits[metric] = fit_k(
            sizes,
            d,
            improvement,
            k_grid=np.asarray(preset.k_grid),
            top=min(preset.top, len(sources)),
        )
    metric = max(preset.metrics, key=lambda m: float(fits[m].mean_spearman.max()))
    return P2LFit(fits=fits, metric=metric, k=plateau_centre(fits[metric]))


def plateau_centre(fit: KFit) -> float:
    """The grid value of ``k`` in the middle of those that reach the best criterion.

    With few training targets the criterion is a step function of ``k`` with wide plateaus;
    :func:`~transferlib.scores.p2l.fit_k` returns the plateau's first grid value (its edge),
    this returns the one nearest the plateau's median, away from both ends of the grid.
    """
    best = fit.grid[np.isclose(fit.mean_spearman, fit.mean_spearman.max())]
    return float(best[np.argmin(np.abs(best - np.median(best)))])


def _spearman(x: Sequence[float], y: Sequence[float]) -> float:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    return float(spearman(x, y)[0])


def evaluate_predictor(
    ground_truth: pd.DataFrame,
    divergences: pd.DataFrame,
    fit: P2LFit,
    preset: P2LPreset,
    *,
    group: str = "evaluation",
) -> pd.DataFrame:
    """The frozen predictor against the paper's baselines on each target of ``group``.

    Returns
    -------
    DataFrame
        One row per target: ``target``; the sources picked by ``P2L`` (largest ``E``), ``B1``
        (largest), ``B2`` (the standard source), ``B5`` (least divergent) and the best source;
        the top-1 accuracy of each pick, ``B3`` (mean over sources: a random pick's
        expectation) and ``B4`` (no transfer); ``picked_best``; Spearman correlations with the
        improvement ``I`` over all sources of ``E`` (``rho_p2l``), of size (``rho_largest``)
        and of minus the divergence (``rho_least_divergent``); and how many picks each ordering
        needs to reach the best source (``picks_p2l``, ``picks_largest``,
        ``picks_least_divergent``; Fig. 7).
    """
    rows = []
    merged = ground_truth.merge(
        divergences[["source", "target", fit.metric]], on=["source", "target"]
    )
    for target, table in merged[merged["group"] == group].groupby("target", sort=False):
        table = table.set_index("source")
        accuracy = table["accuracy"].to_dict()
        ranking = rank_sources(table["size"].to_dict(), table[fit.metric].to_dict(), fit.k)
        by_size = table.sort_values("size", ascending=False, kind="stable").index
        by_divergence = table.sort_values(fit.metric, kind="stable").index
        picks = {
            "P2L": ranking["source"].iloc[0],
            "B1": by_size[0],
            "B2": preset.standard_source,
            "B5": by_divergence[0],
            "best": max(accuracy, key=accuracy.get),
        }
        e = ranking.set_index("source").loc[table.index, "E"]
        row = {"target": target, **{f"{k}_source": v for k, v in picks.items()}}
        row.update({k: accuracy[v] for k, v in picks.items()})
        row["B3"] = float(np.mean(list(accuracy.values())))
        row["B4"] = float(table["reference_accuracy"].iloc[0])
        row["picked_best"] = bool(accuracy[picks["P2L"]] >= accuracy[picks["best"]])
        row["rho_p2l"] = _spearman(e, table["improvement"])
        row["rho_largest"] = _spearman(np.log(table["size"]), table["improvement"])
        row["rho_least_divergent"] = _spearman(-table[fit.metric], table["improvement"])
        row["picks_p2l"] = picks_to_best(list(ranking["source"]), accuracy)
        row["picks_largest"] = picks_to_best(list(by_size), accuracy)
        row["picks_least_divergent"] = picks_to_best(list(by_divergence), accuracy)
        rows.append(row)
    if not rows:
        raise ValueError(f"no targets in group {group!r}")
    return pd.DataFrame(rows)


def relative_gains(evaluation: pd.DataFrame) -> pd.DataFrame:
    """Table 3: ``(P2L - B) / B`` for every baseline, per target, and whether P2L picked best.

    The gain is NaN where the baseline's accuracy is 0 (undefined).
    """
    table = pd.DataFrame({"target": evaluation["target"], "picked_best": evaluation["picked_best"]})
    for baseline in BASELINES:
        base = evaluation[baseline].where(evaluation[baseline] > 0)
        table[baseline] = (evaluation["P2L"] - base) / base
    return table


# ------------------------------------------------------------------------------------------------
# Merged sources (§4.3.3, Fig. 8)
# ------------------------------------------------------------------------------------------------


def user_tasks(run: RunParams, preset: P2LPreset) -> list[TaskSpec]:
    """The small user-like tasks of the merged-source experiment (from the target parts)."""
    glyphs = p2l_datasets(run, preset)["glyphs"]
    return p2l_targets(
        glyphs,
        preset.n_user_tasks,
        slices={name: GLYPHS_DOMAINS[name] for name in preset.user_slices},
        parts=preset.parts,
        class_range=preset.user_class_range,
        n_images=preset.user_images,
        seed=run.seed,
    )


def _merged_row(
    run: RunParams, preset: P2LPreset, progress: bool, item: tuple[str, str, float]
) -> dict[str, Any]:
    task, source, lr = item
    spec = {s.name: s for s in user_tasks(run, preset)}[task]
    training = preset.fine_tuning.replace({"lr": lr})
    name = "merged" if source == "merged" else preset.standard_source
    tuned = _fine_tune(run, preset, name, spec, training, progress)
    return {
        "task": task,
        "source": source,
        "lr": lr,
        "accuracy": tuned.test_accuracy,
        "majority_accuracy": tuned.majority_accuracy,
    }


def run_merged_sources(
    run: RunParams, preset: P2LPreset, *, progress: bool = True, executor: Executor | None = None
) -> pd.DataFrame:
    """§4.3.3: the union of the Glyphs sources against the standard source on user-like tasks.

    Both sources are fine-tuned on every task under every learning rate of the preset; a task's
    score counts the learning rates at which the merged source wins minus those at which the
    standard source wins (Fig. 8's y axis), against the task's divergence from the standard
    source under the chosen metric.

    Returns
    -------
    DataFrame
        One row per task: ``task, slice, classes, train_images, divergence, merged_wins,
        standard_wins, score, merged_accuracy, standard_accuracy`` (mean over learning rates).
    """
    tasks = user_tasks(run, preset)
    run_sources(run, preset, merged=True, progress=progress, executor=executor)
    items = [
        (t.name, source, lr)
        for t in tasks
        for source in ("merged", "standard")
        for lr in preset.user_learning_rates
    ]
    store = result_store(run, _MODULE, "merged-sources", ("task", "source", "lr"), preset)
    rows = run_sweep(
        store,
        items,
        functools.partial(_merged_row, run, preset, progress),
        keys=lambda item: [{"task": item[0], "source": item[1], "lr": item[2]}],
        executor=executor,
        progress=progress,
        desc="P2L merged sources",
    )
    wide = rows.pivot_table(index=["task", "lr"], columns="source", values="accuracy")
    wins = (
        pd.DataFrame(
            {
                "merged_wins": wide["merged"] > wide["standard"],
                "standard_wins": wide["standard"] > wide["merged"],
            }
        )
        .groupby("task")
        .sum()
    )
    means = wide.groupby("task").mean()
    features = _reference_features(run, preset)
    standard = _embedding(features, p2l_tasks(run, preset).sources[preset.standard_source])
    metric = _merged_metric(preset)
    table = pd.DataFrame(
        [
            {
                "task": t.name,
                "slice": t.params["slice"],
                "classes": t.num_classes,
                "train_images": len(t.train_indices),
                "divergence": float(divergence(_embedding(features, t), standard, metric)),
                "merged_wins": int(wins.loc[t.name, "merged_wins"]),
                "standard_wins": int(wins.loc[t.name, "standard_wins"]),
                "merged_accuracy": float(means.loc[t.name, "merged"]),
                "standard_accuracy": float(means.loc[t.name, "standard"]),
            }
            for t in tasks
        ]
    )
    table["score"] = table["merged_wins"] - table["standard_wins"]
    return table


def _merged_metric(preset: P2LPreset) -> str:
    """The divergence of Fig. 8: KL, the paper's choice for its semantic-relations figure."""
    return "kl" if "kl" in preset.metrics else preset.metrics[0]
