"""Experiments of Nguyen, Hassner, Archambeau & Seeger (ICML 2020): LEEP, Section 5.

LEEP scores a source model on a target data set by one forward pass: the log-likelihood of the
expected empirical predictor (EEP). The runners reproduce every experiment of the paper's
Section 5 on the shared experiment layer:

* :func:`run_transfer` -- §5.1-5.3 and Table 1: LEEP, NCE, H-score (and, beyond the paper, LogME,
  N-LEEP, GBC, TransRate, shrinkage H-score) against the test accuracy (F1 on imbalanced
  targets) of re-trained heads and fine-tuned networks, on random class subsets ("large"),
  small balanced targets ("small", and the grey-scale, different-domain "small-gray") and small
  imbalanced binary targets ("imbalanced", "imbalanced-gray");
* :func:`run_meta_transfer` -- §5.4: LEEP against the accuracy of a simplified CNAPs
  (:class:`~transferlib.models.film.SimplifiedCNAPs`) on few-shot episodes of held-out classes;
* :func:`run_convergence` -- §5.5: fine-tuning accuracy per epoch minus the final accuracy of a
  network trained from scratch on the target alone;
* :func:`run_source_selection` -- §5.7: six or more candidate source models on the full target;
* :func:`run_properties` -- Properties 1 and 2 checked on every task of the sweep.

Two source models stand for the paper's two: the packaged ImageNet EfficientNet-Lite0 (for its
ResNet-18) and a ResNet-20-like network trained by us on ten classes held out of the target pool
(for its ResNet-20 on CIFAR-10). On Glyphs the target pool is the other 100 characters (the
CIFAR-100 stand-in) and scikit-learn's digits is the grey-scale target (the Fashion-MNIST
stand-in); with ``dataset="cifar100"`` and ``data_root`` the pool is CIFAR-100, the trained source
learns CIFAR-10 and the grey-scale target is Fashion-MNIST, all read from ``data_root``.

NCE, as in the paper's §3 and §5.6, uses the source model's *predicted* labels as the source
label sequence: ``z_i = argmax_z theta(x_i)_z``.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from transferlib.cache import ResultStore
from transferlib.config import RunParams, register_presets
from transferlib.data import (
    ImageDataset,
    TaskSpec,
    few_shot_episodes,
    imbalanced_binary_tasks,
    load_dataset,
    random_class_subsets,
    small_balanced_tasks,
)
from transferlib.data.digits import load_digits
from transferlib.evaluation import pearson, transferability_levels
from transferlib.experiments.presets import (
    GLYPHS,
    DataSpec,
    Preset,
    TrainingSpec,
    rng,
    scaled,
    stream_seed,
)
from transferlib.experiments.protocols import head_transfer, stacked_task, task_codes
from transferlib.experiments.scoring import compute_scores
from transferlib.experiments.sources import (
    Network,
    majority_accuracy,
    network_activations,
    network_outputs,
    pretrained_network,
    run_dataset,
    train_network,
)
from transferlib.experiments.sweep import result_store, run_sweep, task_key
from transferlib.models import IMAGENET_TOP1, preprocess

__all__ = [
    "BEYOND_PAPER_SCORES",
    "METHODS",
    "PAPER_SCORES",
    "PAPER_TABLE1",
    "PRESETS",
    "SETTINGS",
    "SOURCES",
    "CandidateSpec",
    "FineTuneSpec",
    "LEEPPreset",
    "MetaSpec",
    "SettingSpec",
    "beats_baseline",
    "below_baseline",
    "correlation_table",
    "fine_tune_cut",
    "finetune_baselines",
    "leep_networks",
    "level_table",
    "orientation_similarity",
    "run_convergence",
    "run_loss_control",
    "run_meta_transfer",
    "run_properties",
    "run_source_selection",
    "run_transfer",
    "setting_dataset",
    "setting_tasks",
    "source_network",
    "table1",
]

_MODULE = __name__
# Slack of the floating-point comparisons of Properties 1 and 2 (mean log-likelihoods).
_BOUND_TOLERANCE = 1e-9

#: The paper's two source models, by the keys the runners use.
SOURCES = ("efficientnet_lite0", "resnet20")
#: Transfer methods, as they appear in tables and legends.
METHODS = ("re-train head", "fine-tune")
#: Scores of the paper's Table 1 and the later estimators the chapter adds beyond it.
PAPER_SCORES = ("leep", "nce", "h_score")
BEYOND_PAPER_SCORES = ("logme", "nleep", "gbc", "transrate", "shrinkage_h_score")
#: The settings of §5.1-5.3 (keys of :func:`run_transfer`), in the paper's order.
SETTINGS = ("large", "small", "small-gray", "imbalanced", "imbalanced-gray")


# ------------------------------------------------------------------------------------------------
# Presets
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettingSpec(Preset):
    """Target tasks of one setting of §5.1-5.3 and the schedules used on them.

    Attributes
    ----------
    kind : {"subsets", "balanced", "imbalanced"}
        :func:`~transferlib.data.random_class_subsets` (all examples of 2-100 random classes),
        :func:`~transferlib.data.small_balanced_tasks` or
        :func:`~transferlib.data.imbalanced_binary_tasks`.
    target : {"pool", "gray"}
        The target pool (Glyphs characters / CIFAR-100) or the grey-scale data set.
    n_tasks : int
        Tasks scored and transferred by head re-training.
    n_finetune : int
        The first ``n_finetune`` of them are also fine-tuned.
    head_epochs, finetune_epochs : int
        SGD epochs of the two methods.
    min_classes, max_classes : int
        Subset sizes (``kind="subsets"``).
    n_classes, per_class : int
        Classes and training examples per class (``kind="balanced"``).
    minority : tuple of int
        Range of the smaller class (``kind="imbalanced"``); the other is ``ratio`` times larger.
    ratio : int
    class_balanced : bool
        Fine-tune on the class-balanced cross-entropy (each example weighted by ``n / (K n_k)``,
        :func:`~transferlib.training.stacked.train_stacked`) instead of the paper's plain one.
    """

    kind: Literal["subsets", "balanced", "imbalanced"]
    target: Literal["pool", "gray"]
    n_tasks: int
    n_finetune: int
    head_epochs: int
    finetune_epochs: int
    min_classes: int = 2
    max_classes: int = 100
    n_classes: int = 5
    per_class: int = 50
    minority: tuple[int, int] = (30, 60)
    ratio: int = 5
    class_balanced: bool = False


@dataclass(frozen=True)
class FineTuneSpec(Preset):
    """How networks are fine-tuned (and references trained): the paper's plain SGD.

    Attributes
    ----------
    lr, batch_size, momentum, weight_decay : float, int, float, float
        SGD with a constant learning rate (the paper: 0.01, batch 10, no momentum or decay).
    cuts : tuple of (architecture prefix, cut point)
        Fine-tune only the units after the cut point (the lower part frozen in eval mode, its
        activations computed once); an architecture not listed is fine-tuned whole.
    stack_size : int
        Tasks trained at once (:func:`~transferlib.training.stacked.train_stacked`).
    """

    lr: float = 0.01
    batch_size: int = 10
    momentum: float = 0.0
    weight_decay: float = 0.0
    cuts: tuple[tuple[str, str], ...] = ()
    stack_size: int = 1


@dataclass(frozen=True)
class MetaSpec(Preset):
    """The simplified CNAPs of §5.4 and its episodes.

    Attributes
    ----------
    n_meta_train_classes : int
        Classes of the target pool used for meta-training; the others are held out for the
        evaluation episodes.
    train_episodes, train_shots, train_queries : int
        Meta-training: episodes of ``way`` classes with that many support and query examples per
        class.
    n_episodes, way, shots : int
        Evaluation: episodes of held-out classes (the paper: 5-way, 50 examples per class as
        the target data set, the rest of those classes' examples as the test set).
    lr : float
        Adam learning rate of the adaptation networks.
    embedding_dim, hidden_dim : int
        Width of the task embedding and of the set encoder's hidden layer.
    """

    n_meta_train_classes: int
    train_episodes: int
    train_shots: int
    train_queries: int
    n_episodes: int
    way: int = 5
    shots: int = 50
    lr: float = 1e-3
    embedding_dim: int = 64
    hidden_dim: int = 128


@dataclass(frozen=True)
class CandidateSpec(Preset):
    """A source network we train for source-model selection (§5.7).

    Attributes
    ----------
    name : str
        Key of the candidate (also its colour's concept when it is an architecture name).
    training : TrainingSpec
        Trained on the same held-out source classes as the ResNet-20 source.
    """

    name: str
    training: TrainingSpec


@dataclass(frozen=True)
class LEEPPreset(Preset):
    """Settings of the chapter "LEEP (Nguyen et al. 2020)".

    One preset serves every page, so a network, an extracted output or a row computed for one
    figure is reused from the cache by the others.

    Attributes
    ----------
    data : DataSpec
        The images (the book's shared Glyphs set of the scale).
    n_source_classes : int
        Classes held out of the target pool to train the ResNet-20 source on (Glyphs).
    source_training : TrainingSpec
        The ResNet-20-like source (the paper's ResNet-20 on CIFAR-10).
    large, small, small_gray, imbalanced, imbalanced_gray : SettingSpec
        §5.1-5.3.
    finetune : FineTuneSpec
    reference_training : TrainingSpec
        Networks trained from scratch on each small target (§5.5).
    meta : MetaSpec
    candidates : tuple of CandidateSpec
        Networks we train for §5.7 besides the ResNet-20 source (the packaged
        EfficientNet-Lite0/1/2 are always candidates).
    selection_per_class : int or None
        Training examples per class of the §5.7 target (None: all of them).
    selection_head_epochs, selection_finetune_epochs : int
    n_levels : int
        Transferability levels (equal-width bins of the LEEP range, §5.2).
    loss_control_tasks : int or None
        Fine-tuned tasks of each class-balanced setting fine-tuned again on the plain loss for
        :func:`run_loss_control` (the first ones; None: all of them).
    beyond_paper_max_train : int
        The later estimators are computed on tasks with at most this many training examples
        (N-LEEP's mixture fit and the D x D covariances cost too much on the largest tasks of a
        CPU-scale run); tables say on how many tasks each correlation rests.
    """

    data: DataSpec
    n_source_classes: int
    source_training: TrainingSpec
    large: SettingSpec
    small: SettingSpec
    small_gray: SettingSpec
    imbalanced: SettingSpec
    imbalanced_gray: SettingSpec
    finetune: FineTuneSpec
    reference_training: TrainingSpec
    meta: MetaSpec
    candidates: tuple[CandidateSpec, ...]
    selection_per_class: int | None
    selection_head_epochs: int
    selection_finetune_epochs: int
    n_levels: int = 5
    loss_control_tasks: int | None = None
    beyond_paper_max_train: int = 1_000_000

    def setting(self, name: str) -> SettingSpec:
        """The :class:`SettingSpec` of a setting key (``"small-gray"`` -> ``small_gray``)."""
        if name not in SETTINGS:
            raise ValueError(f"unknown setting {name!r}; choose from {SETTINGS}")
        return getattr(self, name.replace("-", "_"))


BOOK = LEEPPreset(
    data=GLYPHS["book"],
    n_source_classes=10,
    source_training=TrainingSpec(model="resnet20", epochs=15, lr=0.05, batch_size=32, width=8),
    large=SettingSpec(
        kind="subsets", target="pool", n_tasks=60, n_finetune=24, head_epochs=3, finetune_epochs=1
    ),
    small=SettingSpec(
        kind="balanced",
        target="pool",
        n_tasks=60,
        n_finetune=24,
        head_epochs=100,
        finetune_epochs=10,
        n_classes=5,
        per_class=50,
    ),
    small_gray=SettingSpec(
        kind="balanced",
        target="gray",
        n_tasks=60,
        n_finetune=24,
        head_epochs=50,
        finetune_epochs=10,
        n_classes=4,
        per_class=30,
    ),
    imbalanced=SettingSpec(
        kind="imbalanced",
        target="pool",
        n_tasks=60,
        n_finetune=24,
        head_epochs=20,
        finetune_epochs=20,
        minority=(10, 20),
        class_balanced=True,
    ),
    imbalanced_gray=SettingSpec(
        kind="imbalanced",
        target="gray",
        n_tasks=60,
        n_finetune=24,
        head_epochs=20,
        finetune_epochs=10,
        minority=(10, 25),
        class_balanced=True,
    ),
    finetune=FineTuneSpec(
        cuts=(("efficientnet_lite", "stage7"), ("resnet20", "layer3.1"), ("small_cnn", "block2")),
        stack_size=6,
    ),
    # the paper's learning rate and batch size; momentum because 20 epochs of plain SGD leave
    # the references short of trained (the paper gives them 100, or 40 on Fashion-MNIST)
    reference_training=TrainingSpec(
        model="small_cnn",
        epochs=20,
        lr=0.01,
        batch_size=10,
        momentum=0.9,
        weight_decay=0.0,
        width=16,
    ),
    meta=MetaSpec(
        n_meta_train_classes=50, train_episodes=400, train_shots=10, train_queries=10, n_episodes=60
    ),
    candidates=(
        CandidateSpec(
            "small_cnn",
            TrainingSpec(model="small_cnn", epochs=15, lr=0.05, batch_size=32, width=16),
        ),
        CandidateSpec(
            "small_cnn_narrow",
            TrainingSpec(model="small_cnn", epochs=3, lr=0.05, batch_size=32, width=4),
        ),
    ),
    selection_per_class=50,
    selection_head_epochs=3,
    selection_finetune_epochs=1,
    loss_control_tasks=12,
    beyond_paper_max_train=1_000,
)
_SMOKE_SETTING = {"n_tasks": 6, "n_finetune": 4, "head_epochs": 2, "finetune_epochs": 2}
PRESETS: dict[str, LEEPPreset] = scaled(
    BOOK,
    smoke={
        "data": GLYPHS["smoke"],
        "source_training": {"epochs": 4},
        "large": {**_SMOKE_SETTING, "max_classes": 20, "finetune_epochs": 1},
        "small": {**_SMOKE_SETTING, "per_class": 5},
        "small_gray": {**_SMOKE_SETTING, "per_class": 10},
        "imbalanced": {**_SMOKE_SETTING, "minority": (2, 2)},
        "imbalanced_gray": {**_SMOKE_SETTING, "minority": (4, 6)},
        "finetune": {"batch_size": 5, "stack_size": 4},
        "reference_training": {"epochs": 3, "batch_size": 5, "width": 4},
        "meta": {
            "n_meta_train_classes": 50,
            "train_episodes": 20,
            "train_shots": 2,
            "train_queries": 2,
            "n_episodes": 6,
            "shots": 5,
        },
        "candidates": (
            CandidateSpec(
                "small_cnn",
                TrainingSpec(model="small_cnn", epochs=3, lr=0.05, batch_size=32, width=8),
            ),
            CandidateSpec(
                "small_cnn_narrow",
                TrainingSpec(model="small_cnn", epochs=1, lr=0.05, batch_size=32, width=4),
            ),
        ),
        "selection_per_class": 5,
        "selection_head_epochs": 2,
        "selection_finetune_epochs": 1,
    },
    full={
        "data": GLYPHS["full"],
        "source_training": {"epochs": 100, "lr": 0.1, "batch_size": 128, "width": None},
        "large": {"n_tasks": 200, "n_finetune": 200, "head_epochs": 100, "finetune_epochs": 100},
        "small": {"n_tasks": 200, "n_finetune": 200, "head_epochs": 100, "finetune_epochs": 100},
        "small_gray": {"n_tasks": 200, "n_finetune": 200, "head_epochs": 50, "finetune_epochs": 50},
        "imbalanced": {
            "n_tasks": 200,
            "n_finetune": 200,
            "minority": (30, 60),
            "head_epochs": 20,
            "finetune_epochs": 20,
            "class_balanced": False,
        },
        "imbalanced_gray": {
            "n_tasks": 200,
            "n_finetune": 200,
            "head_epochs": 20,
            "finetune_epochs": 20,
            "class_balanced": False,
        },
        "finetune": {"cuts": (), "stack_size": 1},
        "reference_training": {"epochs": 100},
        "meta": {"train_episodes": 20_000, "n_episodes": 200, "train_shots": 20},
        "selection_per_class": None,
        "selection_head_epochs": 100,
        "selection_finetune_epochs": 100,
        "beyond_paper_max_train": 1_000_000,
    },
)
register_presets("leep", PRESETS, datasets=("glyphs", "cifar100"))

#: Pearson r of the paper's Table 1 (Nguyen et al. 2020), keyed by (method, source, setting);
#: values are (LEEP, NCE, H-score) and whether the H-score entry is marked not significant.
PAPER_TABLE1: dict[tuple[str, str, str], tuple[float, float, float, bool]] = {
    ("re-train head", "resnet20", "large"): (0.982, 0.982, 0.831, False),
    ("re-train head", "efficientnet_lite0", "large"): (0.974, 0.973, 0.924, False),
    ("re-train head", "resnet20", "small"): (0.744, 0.743, 0.877, False),
    ("re-train head", "efficientnet_lite0", "small"): (0.798, 0.715, 0.026, True),
    ("re-train head", "resnet20", "small-gray"): (0.518, 0.429, 0.787, False),
    ("re-train head", "efficientnet_lite0", "small-gray"): (0.631, 0.622, 0.005, True),
    ("re-train head", "resnet20", "imbalanced"): (0.862, 0.847, 0.787, False),
    ("re-train head", "efficientnet_lite0", "imbalanced"): (0.522, 0.484, -0.058, True),
    ("re-train head", "resnet20", "imbalanced-gray"): (0.704, 0.688, 0.822, False),
    ("re-train head", "efficientnet_lite0", "imbalanced-gray"): (0.645, 0.624, 0.059, True),
    ("fine-tune", "resnet20", "large"): (0.967, 0.967, 0.787, False),
    ("fine-tune", "efficientnet_lite0", "large"): (0.944, 0.945, 0.875, False),
    ("fine-tune", "resnet20", "small"): (0.396, 0.401, 0.737, False),
    ("fine-tune", "efficientnet_lite0", "small"): (0.762, 0.584, -0.029, True),
    ("fine-tune", "resnet20", "small-gray"): (0.339, 0.258, 0.826, False),
    ("fine-tune", "efficientnet_lite0", "small-gray"): (0.609, 0.578, 0.018, True),
    ("fine-tune", "resnet20", "imbalanced"): (0.597, 0.582, 0.758, False),
    ("fine-tune", "efficientnet_lite0", "imbalanced"): (0.565, 0.503, -0.069, True),
    ("fine-tune", "resnet20", "imbalanced-gray"): (0.603, 0.589, 0.904, False),
    ("fine-tune", "efficientnet_lite0", "imbalanced-gray"): (0.507, 0.425, 0.056, True),
    ("meta-transfer", "efficientnet_lite0", "meta"): (0.591, 0.310, 0.025, True),
}


# ------------------------------------------------------------------------------------------------
# Data: the target pool, the source classes and the grey-scale target
# ------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _dataset(run: RunParams, data: DataSpec, which: str) -> ImageDataset:
    """``"main"``: the run's dataset; ``"source"``: CIFAR-10 for a CIFAR-100 run (else the main
    dataset); ``"gray"``: digits (Fashion-MNIST for a CIFAR-100 run), grey repeated to RGB."""
    real = run.dataset != "glyphs"
    if which == "main" or (which == "source" and not real):
        return run_dataset(run, data)
    if which == "source":
        return load_dataset("cifar10", data_root=run.data_root, seed=run.seed)
    if real:
        return load_dataset(
            "fashion_mnist",
            data_root=run.data_root,
            seed=run.seed,
            image_size=data.image_size,
            channels=3,
        )
    return load_digits(run.seed, image_size=data.image_size, channels=3)


def _label(ds: ImageDataset) -> str:
    return ds.metadata.get("identity_column", ds.metadata.get("default_target", "label"))


def _class_pools(run: RunParams, preset: LEEPPreset) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(source classes, target pool) of the main dataset.

    Glyphs: ``n_source_classes`` characters drawn at random (the named stream ``("leep",
    "source-classes")``) and the others; CIFAR-100: no source classes (the source learns
    CIFAR-10) and all 100 classes.
    """
    ds = _dataset(run, preset.data, "main")
    classes = np.unique(ds.column(_label(ds)))
    if run.dataset != "glyphs":
        return (), tuple(int(c) for c in classes)
    order = rng(run.seed, "leep", "source-classes").permutation(classes)
    source = np.sort(order[: preset.n_source_classes])
    target = np.sort(order[preset.n_source_classes :])
    return tuple(int(c) for c in source), tuple(int(c) for c in target)


def _all_rows_spec(ds: ImageDataset, classes: Sequence[int], name: str, kind: str) -> TaskSpec:
    target = _label(ds)
    column = ds.column(target)
    train, test = np.asarray(ds.splits["train"]), np.asarray(ds.splits["test"])
    return TaskSpec(
        name=name,
        target=target,
        kind=kind,
        classes=tuple(int(c) for c in classes),
        train_indices=train[np.isin(column[train], classes)],
        test_indices=test[np.isin(column[test], classes)],
        params={"dataset": ds.name},
    )


def source_task(run: RunParams, preset: LEEPPreset) -> tuple[ImageDataset, TaskSpec]:
    """The data set and task every trained source learns (the held-out classes / CIFAR-10)."""
    ds = _dataset(run, preset.data, "source")
    source, _ = _class_pools(run, preset)
    classes = source if source else tuple(int(c) for c in np.unique(ds.column(_label(ds))))
    return ds, _all_rows_spec(ds, classes, f"source-{len(classes)}-classes", "source")


def setting_tasks(run: RunParams, preset: LEEPPreset, setting: str) -> list[TaskSpec]:
    """The target tasks of a setting of §5.1-5.3 (see :class:`SettingSpec`)."""
    spec = preset.setting(setting)
    ds = _dataset(run, preset.data, "main" if spec.target == "pool" else "gray")
    classes = _class_pools(run, preset)[1] if spec.target == "pool" else None
    seed = stream_seed(run.seed, "leep", "tasks", setting)
    target = _label(ds)
    if spec.kind == "subsets":
        pool = classes if classes is not None else np.unique(ds.column(target))
        return random_class_subsets(
            ds,
            spec.n_tasks,
            target=target,
            min_classes=spec.min_classes,
            max_classes=min(spec.max_classes, len(pool)),
            classes=classes,
            seed=seed,
        )
    if spec.kind == "balanced":
        return small_balanced_tasks(
            ds,
            spec.n_tasks,
            target=target,
            n_classes=spec.n_classes,
            per_class=spec.per_class,
            classes=classes,
            seed=seed,
        )
    return imbalanced_binary_tasks(
        ds,
        spec.n_tasks,
        target=target,
        minority_range=spec.minority,
        ratio=spec.ratio,
        classes=classes,
        seed=seed,
    )


def _setting_dataset(run: RunParams, preset: LEEPPreset, setting: str) -> ImageDataset:
    return _dataset(
        run, preset.data, "main" if preset.setting(setting).target == "pool" else "gray"
    )


def setting_dataset(run: RunParams, preset: LEEPPreset, setting: str) -> ImageDataset:
    """The data set the tasks of ``setting`` index into (the main one, or the grey digits)."""
    return _setting_dataset(run, preset, setting)


# ------------------------------------------------------------------------------------------------
# Source networks and their outputs
# ------------------------------------------------------------------------------------------------


def fine_tune_cut(preset: LEEPPreset, architecture: str) -> str | None:
    """The cut point fine-tuning starts from for ``architecture`` (None: the whole network)."""
    for prefix, cut in preset.finetune.cuts:
        if architecture.startswith(prefix):
            return cut
    return None


@functools.lru_cache(maxsize=8)
def _pretrained(name: str, input_size: int, device: str) -> Network:
    return pretrained_network(name, input_size, device)


def _trained_candidate(preset: LEEPPreset, name: str) -> TrainingSpec:
    if name == "resnet20":
        return preset.source_training
    for candidate in preset.candidates:
        if candidate.name == name:
            return candidate.training
    raise ValueError(f"unknown source {name!r}")


def source_network(
    run: RunParams, preset: LEEPPreset, name: str, *, progress: bool = False
) -> Network:
    """A source or candidate network: a packaged EfficientNet-Lite, or one we train (cached).

    Names: ``"efficientnet_lite0"``/``1``/``2`` (ImageNet), ``"resnet20"`` (the §5.1 source) and
    the names of ``preset.candidates``.
    """
    if name.startswith("efficientnet_lite"):
        return _pretrained(name, preset.data.pretrained_input_size, run.device)
    training = _trained_candidate(preset, name)
    ds, spec = source_task(run, preset)
    network = train_network(run, ds, spec, training, role="source", progress=progress)
    return dataclasses.replace(network, name=name)


@dataclass
class _Outputs:
    """A network's outputs on every row of a dataset."""

    probs: np.ndarray
    features: np.ndarray
    inputs: torch.Tensor  # activation maps after ``cut``, or the uint8 images (cut None)
    cut: str | None


def _output_rows(run: RunParams, preset: LEEPPreset, which: str) -> tuple[ImageDataset, np.ndarray]:
    """The dataset of outputs ``which`` and the rows a source runs on (see :func:`_outputs`)."""
    dataset = _dataset(run, preset.data, "main" if which == "selection" else which)
    if which != "selection":
        return dataset, np.arange(len(dataset))
    spec = selection_task(run, preset)
    return dataset, np.concatenate([spec.train_indices, spec.test_indices])


def _cache_source(run: RunParams, preset: LEEPPreset, item: tuple[str, str]) -> None:
    """Train or extract into the disk cache what ``_outputs(run, preset, *item)`` reads: the
    source network and its activation maps (or outputs) on the rows of ``which``."""
    name, which = item
    network = source_network(run, preset, name)
    dataset, rows = _output_rows(run, preset, which)
    cut = fine_tune_cut(preset, network.architecture)
    if cut is None:
        network_outputs(run, network, dataset.images[rows], ("probs", "features"))
    else:
        network_activations(run, network, dataset.images[rows], cut)


def _cache_sources(
    run: RunParams,
    preset: LEEPPreset,
    items: Sequence[tuple[str, str]],
    executor: Executor | None,
) -> None:
    """Build the (source, outputs) ``items`` side by side on the executor's workers, one item a
    worker, so that the sweeps after them only read the cache (without an executor each is built
    in this process when first needed)."""
    if executor is not None:
        list(executor.map(functools.partial(_cache_source, run, preset), items))


@functools.lru_cache(maxsize=6)
def _outputs(run: RunParams, preset: LEEPPreset, name: str, which: str) -> _Outputs:
    """Probabilities, penultimate features and fine-tuning inputs of source ``name`` on dataset
    ``which``: every image of ``"main"`` or ``"gray"``, or (``"selection"``) the rows of the
    §5.7 target only, the other rows of the main dataset left at zero.

    With a cut point, the frozen lower part runs once (its activation maps are cached) and the
    probabilities and features come from the upper part; without one, both come from
    :func:`~transferlib.experiments.sources.network_outputs`.
    """
    network = source_network(run, preset, name)
    dataset, rows = _output_rows(run, preset, which)
    images = dataset.images[rows]
    cut = fine_tune_cut(preset, network.architecture)
    if cut is None:
        out = network_outputs(run, network, images, ("probs", "features"))
        probs, features = out["probs"], out["features"]
        inputs = torch.from_numpy(dataset.images)
    else:
        maps = torch.from_numpy(network_activations(run, network, images, cut))
        model = network.model.eval()
        device = next(model.parameters()).device
        feature_parts, logit_parts = [], []
        with torch.no_grad():
            for start in range(0, len(maps), 512):
                f = model.features_from(cut, maps[start : start + 512].to(device))
                feature_parts.append(f.cpu())
                logit_parts.append(model.head(f).float().cpu())
        probs = torch.cat(logit_parts).softmax(dim=1).numpy()
        features = torch.cat(feature_parts).numpy()
        inputs = maps
    if len(rows) == len(dataset):
        return _Outputs(probs, features, inputs, cut)

    def full(values: np.ndarray | torch.Tensor) -> Any:
        array = np.zeros((len(dataset), *values.shape[1:]), dtype=np.float32)
        array[rows] = values.numpy() if isinstance(values, torch.Tensor) else values
        return array

    pool = inputs if cut is None else torch.from_numpy(full(inputs))
    return _Outputs(full(probs), full(features), pool, cut)


# ------------------------------------------------------------------------------------------------
# Scores, heads and fine-tuning of one (setting, source)
# ------------------------------------------------------------------------------------------------


def _which(spec: SettingSpec) -> str:
    return "main" if spec.target == "pool" else "gray"


@dataclass(frozen=True)
class _Sweep:
    """One resumable sweep of the chapter: what :func:`run_sweep` needs, built before running so
    that a runner can ask which sweeps still have rows to compute."""

    store: ResultStore
    items: Sequence[Any]
    compute: Callable[[Any], Any]
    keys: Callable[[Any], list[dict[str, Any]]]
    desc: str

    def pending(self) -> bool:
        """Whether some row of the sweep is not in its store yet."""
        done = self.store.completed_keys()
        columns = self.store.key_columns
        return any(
            tuple(str(key[c]) for c in columns) not in done
            for item in self.items
            for key in self.keys(item)
        )

    def run(self, progress: bool, executor: Executor | None) -> pd.DataFrame:
        return run_sweep(
            self.store,
            self.items,
            self.compute,
            keys=self.keys,
            executor=executor,
            progress=progress,
            desc=self.desc,
        )


def score_names(preset: LEEPPreset, n_train: int, num_classes: int) -> list[str]:
    """Scores computed on a task: the paper's three, and the later estimators on tasks with at
    most ``preset.beyond_paper_max_train`` examples; N-LEEP only where its mixture of
    ``5 * num_classes`` Gaussians has at least two examples per component."""
    names = list(PAPER_SCORES)
    if n_train <= preset.beyond_paper_max_train:
        names += [s for s in BEYOND_PAPER_SCORES if s != "nleep" or n_train >= 10 * num_classes]
    return names


def _score_values(
    run: RunParams, preset: LEEPPreset, out: _Outputs, rows: np.ndarray, labels: np.ndarray
) -> dict[str, float]:
    """The scores of one task (NaN where not computed), from the source's outputs on its
    training rows, and the mean log-probability of the predicted source labels."""
    probs = out.probs[rows].astype(np.float64)
    probs /= probs.sum(1, keepdims=True)
    predicted = probs.argmax(1)  # NCE's source labels: the source model's predictions
    inputs = {
        "source_labels": predicted,
        "source_probs": probs,
        "features": out.features[rows].astype(np.float64),
    }
    scores: dict[str, float] = {}
    for name in score_names(preset, len(rows), int(np.unique(labels).size)):
        try:
            with warnings.catch_warnings():
                # LogME's fixed point stops at max_iter short of tol=1e-12 on a few tasks; its
                # last iterate is far more precise than a correlation across tasks needs
                warnings.filterwarnings(
                    "ignore", "logme: the evidence fixed point did not converge", RuntimeWarning
                )
                scores |= compute_scores([name], labels, device=run.device, **inputs)
        except ValueError as error:
            # LogME is +inf where a class lies in the span of rank-deficient features (a linear
            # head fits it exactly): left out of its correlations (its "tasks" count says so)
            if name != "logme" or "unbounded" not in str(error):
                raise
    values = {name: scores.get(name, np.nan) for name in PAPER_SCORES + BEYOND_PAPER_SCORES}
    values["mean_log_top"] = float(np.log(probs[np.arange(len(rows)), predicted]).mean())
    return values


def _score_row(
    run: RunParams, preset: LEEPPreset, setting: str, source: str, spec: TaskSpec
) -> dict[str, Any]:
    ds = _setting_dataset(run, preset, setting)
    out = _outputs(run, preset, source, _which(preset.setting(setting)))
    rows = spec.train_indices
    labels = task_codes(ds, spec, rows, "train")
    return {
        "task": spec.name,
        "source": source,
        "n_train": len(rows),
        "n_test": len(spec.test_indices),
        "num_classes": spec.num_classes,
        **_score_values(run, preset, out, rows, labels),
    }


def _score_sweep(run: RunParams, preset: LEEPPreset, setting: str, source: str) -> _Sweep:
    return _Sweep(
        result_store(run, _MODULE, f"scores-{setting}-{source}", ("task",), preset),
        setting_tasks(run, preset, setting),
        functools.partial(_score_row, run, preset, setting, source),
        task_key,
        f"scores {setting} {source}",
    )


def _scores(
    run: RunParams,
    preset: LEEPPreset,
    setting: str,
    source: str,
    progress: bool,
    executor: Executor | None,
) -> pd.DataFrame:
    return _score_sweep(run, preset, setting, source).run(progress, executor)


def _chunks(items: Sequence[Any], size: int) -> list[tuple[Any, ...]]:
    return [tuple(items[i : i + size]) for i in range(0, len(items), size)]


def _stacks(tasks: Sequence[TaskSpec], size: int) -> list[tuple[TaskSpec, ...]]:
    """Tasks in stacks of ``size`` for :func:`~transferlib.training.stacked.train_stacked`, the
    largest first: a stack runs as many steps as its largest task has batches (the others idle
    meanwhile), so tasks of like size go together, and the longest stacks start first on an
    executor's workers. Each task's result does not depend on its stack."""
    by_size = sorted(tasks, key=lambda spec: len(spec.train_indices), reverse=True)
    return _chunks(by_size, size)


def _chunk_keys(chunk: tuple[TaskSpec, ...]) -> list[dict[str, Any]]:
    return [{"task": spec.name} for spec in chunk]


def _head_rows(
    run: RunParams, preset: LEEPPreset, setting: str, source: str, chunk: tuple[TaskSpec, ...]
) -> list[dict[str, Any]]:
    ds = _setting_dataset(run, preset, setting)
    out = _outputs(run, preset, source, _which(preset.setting(setting)))
    train, test = np.asarray(ds.splits["train"]), np.asarray(ds.splits["test"])
    table = head_transfer(
        run,
        ds,
        list(chunk),
        out.features[train],
        train,
        out.features[test],
        test,
        "sgd",
        lr=preset.finetune.lr,
        batch_size=preset.finetune.batch_size,
        epochs=preset.setting(setting).head_epochs,
        seed=stream_seed(run.seed, "leep", "heads", setting, source),
    )
    return [
        {
            "task": spec.name,
            "accuracy": float(row["accuracy"]),
            "macro_f1": float(row["macro_f1"]),
            "train_log_likelihood": float(row["train_log_likelihood"]),
            "test_log_likelihood": float(row["test_log_likelihood"]),
            "train_accuracy": float(row["train_accuracy"]),
            "majority_accuracy": float(row["majority_accuracy"]),
        }
        for spec, (_, row) in zip(chunk, table.iterrows())
    ]


def _head_sweep(run: RunParams, preset: LEEPPreset, setting: str, source: str) -> _Sweep:
    return _Sweep(
        result_store(run, _MODULE, f"heads-{setting}-{source}", ("task",), preset),
        _chunks(setting_tasks(run, preset, setting), 20),
        functools.partial(_head_rows, run, preset, setting, source),
        _chunk_keys,
        f"heads {setting} {source}",
    )


def _heads(
    run: RunParams,
    preset: LEEPPreset,
    setting: str,
    source: str,
    progress: bool,
    executor: Executor | None,
) -> pd.DataFrame:
    return _head_sweep(run, preset, setting, source).run(progress, executor)


def _history_rows(
    chunk: Sequence[TaskSpec], histories: Sequence[pd.DataFrame], majority: Sequence[float]
) -> list[dict[str, Any]]:
    rows = []
    for spec, history, base in zip(chunk, histories, majority):
        for record in history.to_dict("records"):
            rows.append({"task": spec.name, **record, "majority_accuracy": base})
    return rows


def _majority(ds: ImageDataset, spec: TaskSpec) -> float:
    return majority_accuracy(
        task_codes(ds, spec, spec.train_indices, "train"),
        task_codes(ds, spec, spec.test_indices, "test"),
    )


def _fine_tune_chunk(
    run: RunParams,
    preset: LEEPPreset,
    which: str,
    source: str,
    epochs: int,
    ds: ImageDataset,
    chunk: Sequence[TaskSpec],
    stream: str,
    progress: bool,
    class_balanced: bool = False,
) -> list[pd.DataFrame]:
    from transferlib.training.stacked import train_stacked

    network = source_network(run, preset, source)
    out = _outputs(run, preset, source, which)
    heads = []
    for spec in chunk:  # a new head per task, initialised under its own stream
        torch.manual_seed(stream_seed(run.seed, "leep", stream, source, spec.name, "head"))
        heads.append(torch.nn.Linear(network.model.feature_dim, spec.num_classes))
    tasks = [
        stacked_task(ds, spec, stream_seed(run.seed, "leep", stream, source, spec.name))
        for spec in chunk
    ]
    transform = None if out.cut is not None else functools.partial(preprocess, network.model)
    ft = preset.finetune
    return train_stacked(
        [network.model] * len(chunk),
        out.inputs,
        tasks,
        heads=heads,
        cut=out.cut,
        epochs=epochs,
        lr=ft.lr,
        batch_size=ft.batch_size,
        momentum=ft.momentum,
        weight_decay=ft.weight_decay,
        class_balanced=class_balanced,
        transform=transform,
        device=run.device,
        progress=progress,
        desc=f"fine-tune {source}",
    )


def _finetune_rows(
    run: RunParams,
    preset: LEEPPreset,
    setting: str,
    source: str,
    progress: bool,
    chunk: tuple[TaskSpec, ...],
) -> list[dict[str, Any]]:
    spec = preset.setting(setting)
    ds = _setting_dataset(run, preset, setting)
    histories = _fine_tune_chunk(
        run,
        preset,
        _which(spec),
        source,
        spec.finetune_epochs,
        ds,
        chunk,
        f"fine-tune-{setting}",
        progress,
        spec.class_balanced,
    )
    return _history_rows(chunk, histories, [_majority(ds, s) for s in chunk])


def _epoch_keys(epochs: int, chunk: tuple[TaskSpec, ...]) -> list[dict[str, Any]]:
    return [{"task": s.name, "epoch": e} for s in chunk for e in range(1, epochs + 1)]


def _finetune_sweep(
    run: RunParams, preset: LEEPPreset, setting: str, source: str, progress: bool
) -> _Sweep:
    spec = preset.setting(setting)
    tasks = setting_tasks(run, preset, setting)[: spec.n_finetune]
    return _Sweep(
        result_store(run, _MODULE, f"finetune-{setting}-{source}", ("task", "epoch"), preset),
        _stacks(tasks, preset.finetune.stack_size),
        functools.partial(_finetune_rows, run, preset, setting, source, progress),
        functools.partial(_epoch_keys, spec.finetune_epochs),
        f"fine-tune {setting} {source}",
    )


def _fine_tuning(
    run: RunParams,
    preset: LEEPPreset,
    setting: str,
    source: str,
    progress: bool,
    executor: Executor | None,
) -> pd.DataFrame:
    table = _finetune_sweep(run, preset, setting, source, progress).run(progress, executor)
    return _in_task_order(table, setting_tasks(run, preset, setting))


def _in_task_order(table: pd.DataFrame, tasks: Sequence[TaskSpec]) -> pd.DataFrame:
    """Rows of per-epoch histories in the order of ``tasks`` (a sweep returns its stacks' order)."""
    rank = table["task"].map({spec.name: i for i, spec in enumerate(tasks)})
    ordered = table.assign(_rank=rank).sort_values(["_rank", "epoch"], kind="stable")
    return ordered.drop(columns="_rank").reset_index(drop=True)


def run_transfer(
    run: RunParams,
    preset: LEEPPreset,
    setting: str,
    *,
    progress: bool = True,
    executor: Executor | None = None,
) -> pd.DataFrame:
    """Scores against transfer performance on the tasks of a setting (§5.1-5.3).

    For each of the two sources (:data:`SOURCES`) and each task: the scores (LEEP, NCE with the
    source model's predicted labels, H-score on its penultimate features, and the later
    estimators on tasks within ``preset.beyond_paper_max_train`` examples), then the test
    accuracy and macro-F1 of a re-trained head (SGD, the paper's protocol) for every task and of
    a fine-tuned network for the first ``n_finetune`` tasks.

    Returns
    -------
    DataFrame
        One row per (source, task, method): ``setting, source, method, task, accuracy,
        macro_f1, majority_accuracy, n_train, n_test, num_classes``, the scores, ``mean_log_top``
        (mean log-probability of the predicted source label) and ``epochs``.
    """
    which = _which(preset.setting(setting))
    pending = [
        (source, which)
        for source in SOURCES
        if _score_sweep(run, preset, setting, source).pending()
        or _head_sweep(run, preset, setting, source).pending()
        or _finetune_sweep(run, preset, setting, source, progress).pending()
    ]
    _cache_sources(run, preset, pending, executor)
    parts = []
    for source in SOURCES:
        scores = _scores(run, preset, setting, source, progress, executor)
        heads = _heads(run, preset, setting, source, progress, executor)
        tuned = _fine_tuning(run, preset, setting, source, progress, executor)
        final = tuned[tuned["epoch"] == tuned["epoch"].max()].rename(
            columns={"test_accuracy": "accuracy", "test_macro_f1": "macro_f1"}
        )
        head_part = heads.assign(method=METHODS[0], epochs=preset.setting(setting).head_epochs)
        tune_part = final[
            ["task", "accuracy", "macro_f1", "majority_accuracy", "epoch", "train_accuracy"]
        ].rename(columns={"epoch": "epochs"})
        for method_table in (head_part, tune_part.assign(method=METHODS[1])):
            parts.append(method_table.merge(scores, on="task").assign(setting=setting))
    table = pd.concat(parts, ignore_index=True)
    first = ["setting", "source", "method", "task", "accuracy", "macro_f1", "majority_accuracy"]
    return table[first + [c for c in table.columns if c not in first]]


# ------------------------------------------------------------------------------------------------
# Properties 1 and 2
# ------------------------------------------------------------------------------------------------


def _property_rows(
    run: RunParams,
    preset: LEEPPreset,
    setting: str,
    source: str,
    chunk: tuple[TaskSpec, ...],
) -> list[dict[str, Any]]:
    """Logistic heads fitted to convergence (almost no penalty) for tasks whose SGD head does not
    already certify Property 1."""
    ds = _setting_dataset(run, preset, setting)
    out = _outputs(run, preset, source, _which(preset.setting(setting)))
    train, test = np.asarray(ds.splits["train"]), np.asarray(ds.splits["test"])
    table = head_transfer(
        run,
        ds,
        list(chunk),
        out.features[train],
        train,
        out.features[test],
        test,
        "logistic",
        C=1e4,
        max_iter=2000,
        tol=1e-6,
    )
    return [
        {
            "task": spec.name,
            "converged_train_log_likelihood": float(ll),
            "converged_iterations": int(it),
        }
        for spec, ll, it in zip(chunk, table["train_log_likelihood"], table["iterations"])
    ]


def run_properties(
    run: RunParams,
    preset: LEEPPreset,
    *,
    settings: Sequence[str] = SETTINGS,
    progress: bool = True,
    executor: Executor | None = None,
) -> pd.DataFrame:
    """Properties 1 and 2 on every (setting, source, task) of :func:`run_transfer` (of the
    given ``settings``, by default all).

    * Property 2 (exact): ``LEEP >= NCE + mean_i log theta(x_i)_{z_i}`` with the predicted
      labels ``z_i``.
    * Property 1 with the linear heads the experiments use (the paper's "we skip the second
      step"): ``LEEP <= max over linear heads of the training log-likelihood``. Any fitted
      head's training log-likelihood is a lower bound of that maximum, so a re-trained head
      that reaches LEEP certifies the property; the other tasks get a logistic head fitted to
      convergence with almost no penalty (``C = 1e4``).

    Returns
    -------
    DataFrame
        One row per (setting, source, task): ``leep, nce, mean_log_top, property2_bound,
        property2_holds, head_train_log_likelihood, converged_train_log_likelihood,
        property1_holds, property1_certified_by``.
    """
    parts = []
    for setting in settings:
        transfer = run_transfer(run, preset, setting, progress=progress, executor=executor)
        heads = transfer[transfer["method"] == METHODS[0]]
        for source in SOURCES:
            part = heads[heads["source"] == source][
                ["setting", "source", "task", "leep", "nce", "mean_log_top", "train_log_likelihood"]
            ].rename(columns={"train_log_likelihood": "head_train_log_likelihood"})
            open_tasks = part[part["leep"] > part["head_train_log_likelihood"] + _BOUND_TOLERANCE]
            specs = {s.name: s for s in setting_tasks(run, preset, setting)}
            converged = pd.DataFrame(columns=["task", "converged_train_log_likelihood"])
            if len(open_tasks):
                store = result_store(
                    run, _MODULE, f"property1-{setting}-{source}", ("task",), preset
                )
                chunks = _chunks([specs[t] for t in open_tasks["task"]], 20)
                compute = functools.partial(_property_rows, run, preset, setting, source)
                converged = run_sweep(
                    store,
                    chunks,
                    compute,
                    keys=_chunk_keys,
                    executor=executor,
                    progress=progress,
                    desc=f"property 1 {setting} {source}",
                )
            parts.append(
                part.merge(
                    converged[["task", "converged_train_log_likelihood"]], on="task", how="left"
                )
            )
    table = pd.concat(parts, ignore_index=True)
    table["property2_bound"] = table["nce"] + table["mean_log_top"]
    table["property2_holds"] = table["leep"] >= table["property2_bound"] - _BOUND_TOLERANCE
    best = table[["head_train_log_likelihood", "converged_train_log_likelihood"]].max(axis=1)
    table["property1_holds"] = table["leep"] <= best + _BOUND_TOLERANCE
    table["property1_certified_by"] = np.where(
        table["leep"] <= table["head_train_log_likelihood"] + _BOUND_TOLERANCE,
        "re-trained head",
        np.where(table["property1_holds"], "converged logistic head", "none"),
    )
    return table


# ------------------------------------------------------------------------------------------------
# §5.5 convergence against a reference trained from scratch
# ------------------------------------------------------------------------------------------------


def _reference_rows(
    run: RunParams, preset: LEEPPreset, setting: str, progress: bool, chunk: tuple[TaskSpec, ...]
) -> list[dict[str, Any]]:
    from transferlib.models import build_model
    from transferlib.training.stacked import train_stacked

    ds = _setting_dataset(run, preset, setting)
    training = preset.reference_training
    models = []
    for spec in chunk:
        torch.manual_seed(stream_seed(run.seed, "leep", "reference", setting, spec.name, "init"))
        models.append(build_model(training.model, spec.num_classes, **training.model_kwargs()))
    tasks = [
        stacked_task(ds, spec, stream_seed(run.seed, "leep", "reference", setting, spec.name))
        for spec in chunk
    ]
    histories = train_stacked(
        models,
        torch.from_numpy(ds.images),
        tasks,
        cut=None,
        epochs=training.epochs,
        lr=training.lr,
        batch_size=training.batch_size,
        momentum=training.momentum,
        weight_decay=training.weight_decay,
        transform=functools.partial(preprocess, models[0]),
        device=run.device,
        progress=progress,
        desc="references",
    )
    return _history_rows(chunk, histories, [_majority(ds, s) for s in chunk])


def _references(
    run: RunParams, preset: LEEPPreset, setting: str, progress: bool, executor: Executor | None
) -> pd.DataFrame:
    tasks = setting_tasks(run, preset, setting)[: preset.setting(setting).n_finetune]
    sweep = _Sweep(
        result_store(run, _MODULE, f"references-{setting}", ("task", "epoch"), preset),
        _stacks(tasks, preset.finetune.stack_size),
        functools.partial(_reference_rows, run, preset, setting, progress),
        functools.partial(_epoch_keys, preset.reference_training.epochs),
        f"references {setting}",
    )
    return _in_task_order(sweep.run(progress, executor), tasks)


def run_convergence(
    run: RunParams,
    preset: LEEPPreset,
    *,
    progress: bool = True,
    executor: Executor | None = None,
) -> pd.DataFrame:
    """Fine-tuning accuracy per epoch minus the reference's final accuracy (§5.5, Figs. 4, 8).

    On the two small balanced settings (``"small"``, ``"small-gray"``), each fine-tuned task
    gets a reference network trained from scratch on the task alone
    (``preset.reference_training``); ``difference`` is the fine-tuned network's test accuracy
    after each epoch minus the reference's accuracy after its last epoch, and ``level`` the
    task's LEEP level (equal-width bins of the LEEP range of the source's fine-tuned tasks).

    Returns
    -------
    DataFrame
        One row per (setting, source, task, epoch): ``accuracy, reference_accuracy,
        difference, leep, level``.
    """
    parts = []
    for setting in ("small", "small-gray"):
        references = _references(run, preset, setting, progress, executor)
        last = references[references["epoch"] == references["epoch"].max()]
        reference = last.set_index("task")["test_accuracy"]
        for source in SOURCES:
            scores = _scores(run, preset, setting, source, progress, executor)
            tuned = _fine_tuning(run, preset, setting, source, progress, executor)
            leep = scores.set_index("task")["leep"].reindex(tuned["task"].unique())
            levels = transferability_levels(leep.to_numpy(), np.zeros(len(leep)), preset.n_levels)
            edges = np.append(levels["lower"].to_numpy(), levels["upper"].iloc[-1])
            level = np.clip(
                np.searchsorted(edges, leep.to_numpy(), side="right"), 1, preset.n_levels
            )
            part = tuned[["task", "epoch", "test_accuracy"]].rename(
                columns={"test_accuracy": "accuracy"}
            )
            part["reference_accuracy"] = part["task"].map(reference)
            part["difference"] = part["accuracy"] - part["reference_accuracy"]
            part["leep"] = part["task"].map(leep)
            part["level"] = part["task"].map(dict(zip(leep.index, level)))
            parts.append(part.assign(setting=setting, source=source))
    return pd.concat(parts, ignore_index=True)


def reference_table(run: RunParams, preset: LEEPPreset) -> pd.DataFrame:
    """Final-epoch rows of the reference networks of both small settings (for the networks
    table); computed by :func:`run_convergence`."""
    parts = []
    for setting in ("small", "small-gray"):
        references = _references(run, preset, setting, False, None)
        last = references[references["epoch"] == references["epoch"].max()]
        parts.append(last.assign(setting=setting))
    return pd.concat(parts, ignore_index=True)


# ------------------------------------------------------------------------------------------------
# §5.4 meta-transfer with a simplified CNAPs
# ------------------------------------------------------------------------------------------------


def _meta_pools(run: RunParams, preset: LEEPPreset) -> tuple[np.ndarray, np.ndarray]:
    """(meta-training classes, held-out classes) of the target pool."""
    _, pool = _class_pools(run, preset)
    order = rng(run.seed, "leep", "meta-classes").permutation(np.asarray(pool))
    cut = preset.meta.n_meta_train_classes
    return np.sort(order[:cut]), np.sort(order[cut:])


def _episode_split(ds: ImageDataset, classes: np.ndarray, need: int) -> str:
    """The paper draws episodes from CIFAR-100's test split (100 images a class); a split with
    fewer than ``need`` images in some class (Glyphs' test split) gives way to the train split."""
    column = ds.column(_label(ds))
    test = np.asarray(ds.splits["test"])
    counts = np.bincount(column[test], minlength=int(column.max()) + 1)[classes]
    return "test" if counts.min() >= need else "train"


def _meta_model(run: RunParams, preset: LEEPPreset, progress: bool) -> Any:
    """The simplified CNAPs, meta-trained on episodes of the meta-training classes (cached)."""
    from transferlib.cache import config_key, load_or_build, load_torch, save_torch
    from transferlib.models.film import SimplifiedCNAPs, meta_train
    from transferlib.provenance import code_version

    network = source_network(run, preset, SOURCES[0])
    cut = fine_tune_cut(preset, network.architecture)
    out = _outputs(run, preset, SOURCES[0], "main")
    ds = _dataset(run, preset.data, "main")
    train_classes, _ = _meta_pools(run, preset)
    meta = preset.meta
    episodes = few_shot_episodes(
        ds,
        meta.train_episodes,
        target=_label(ds),
        n_way=meta.way,
        n_support=meta.train_shots,
        n_query=meta.train_queries,
        classes=train_classes,
        split="train",
        seed=stream_seed(run.seed, "leep", "meta-train-episodes"),
    )
    key = config_key(
        {
            "network": network.key,
            "cut": cut,
            "meta": dataclasses.asdict(meta),
            "episodes": [e.key()["indices"] for e in episodes[:3]],
            "code": code_version("transferlib.models.film"),
            "seed": run.seed,
        }
    )

    def build() -> dict[str, Any]:
        torch.manual_seed(stream_seed(run.seed, "leep", "meta-init"))
        model = SimplifiedCNAPs(
            network.model, cut, embedding_dim=meta.embedding_dim, hidden_dim=meta.hidden_dim
        )
        transform = None if cut is not None else functools.partial(preprocess, network.model)
        meta_train(
            model,
            out.inputs,
            [
                (
                    e.train_indices,
                    task_codes(ds, e, e.train_indices, "train"),
                    e.test_indices,
                    task_codes(ds, e, e.test_indices, "test"),
                )
                for e in episodes
            ],
            lr=meta.lr,
            transform=transform,
            progress=progress,
        )
        return model.adaptation_state()

    state, _ = load_or_build(
        "models",
        key,
        build,
        save=save_torch,
        load=lambda path: load_torch(path, map_location="cpu"),
        suffix=".pt",
        cache_dir=run.cache_dir,
        scale=run.scale,
        description={"model": "simplified CNAPs"},
    )
    model = SimplifiedCNAPs(
        network.model, cut, embedding_dim=meta.embedding_dim, hidden_dim=meta.hidden_dim
    )
    model.load_adaptation_state(state)
    return model.eval()


def meta_episodes(run: RunParams, preset: LEEPPreset) -> list[TaskSpec]:
    """The evaluation episodes of §5.4: ``way`` held-out classes, ``shots`` support images
    each (the target data set), the rest of those classes' images as the query set."""
    ds = _dataset(run, preset.data, "main")
    _, held_out = _meta_pools(run, preset)
    meta = preset.meta
    split = _episode_split(ds, held_out, meta.shots + 1)
    return few_shot_episodes(
        ds,
        meta.n_episodes,
        target=_label(ds),
        n_way=meta.way,
        n_support=meta.shots,
        classes=held_out,
        split=split,
        seed=stream_seed(run.seed, "leep", "meta-episodes"),
    )


def _meta_rows(
    run: RunParams, preset: LEEPPreset, progress: bool, chunk: tuple[TaskSpec, ...]
) -> list[dict[str, Any]]:
    model = _meta_model(run, preset, progress)
    ds = _dataset(run, preset.data, "main")
    out = _outputs(run, preset, SOURCES[0], "main")
    transform = None if out.cut is not None else functools.partial(preprocess, model.source)
    rows = []
    for spec in chunk:
        support = task_codes(ds, spec, spec.train_indices, "train")
        query = task_codes(ds, spec, spec.test_indices, "test")
        accuracy = model.accuracy(
            out.inputs, spec.train_indices, support, spec.test_indices, query, transform=transform
        )
        row = _score_values(run, preset, out, spec.train_indices, support)
        row.update(
            {
                "task": spec.name,
                "accuracy": accuracy,
                "n_train": len(support),
                "n_test": len(query),
                "num_classes": spec.num_classes,
                "majority_accuracy": majority_accuracy(support, query),
            }
        )
        rows.append(row)
    return rows


def run_meta_transfer(
    run: RunParams,
    preset: LEEPPreset,
    *,
    progress: bool = True,
    executor: Executor | None = None,
) -> pd.DataFrame:
    """LEEP against the accuracy of a meta-transferred model (§5.4, Fig. 3).

    A simplified CNAPs (:class:`~transferlib.models.film.SimplifiedCNAPs`) adapts the ImageNet
    source to each episode from its support set alone. It is meta-trained once on episodes of
    ``preset.meta.n_meta_train_classes`` classes of the target pool and evaluated on episodes of
    the held-out classes; the scores use the source model on the support set, as LEEP's target
    data set.

    Returns
    -------
    DataFrame
        One row per episode: ``task, accuracy, majority_accuracy``, the scores, ``n_train,
        n_test, num_classes``.
    """
    sweep = _Sweep(
        result_store(run, _MODULE, "meta-transfer", ("task",), preset),
        _chunks(meta_episodes(run, preset), 20),
        functools.partial(_meta_rows, run, preset, progress),
        _chunk_keys,
        "meta-transfer",
    )
    if executor is not None and sweep.pending():
        _meta_model(run, preset, progress)  # meta-trained once here, read by the workers
    table = sweep.run(progress, executor)
    return table.assign(setting="meta", source=SOURCES[0], method="meta-transfer")


# ------------------------------------------------------------------------------------------------
# §5.7 source-model selection
# ------------------------------------------------------------------------------------------------


def selection_candidates(preset: LEEPPreset) -> tuple[str, ...]:
    """The candidate source models of §5.7: the packaged EfficientNet-Lite0/1/2, the ResNet-20
    source and ``preset.candidates``."""
    names = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "resnet20")
    return names + tuple(c.name for c in preset.candidates)


def selection_task(run: RunParams, preset: LEEPPreset) -> TaskSpec:
    """The full target of §5.7: every class of the pool (``selection_per_class`` training
    examples of each, or all), all their test examples."""
    ds = _dataset(run, preset.data, "main")
    _, pool = _class_pools(run, preset)
    if preset.selection_per_class is None:
        return _all_rows_spec(ds, pool, "full-target", "selection")
    (spec,) = small_balanced_tasks(
        ds,
        1,
        target=_label(ds),
        n_classes=len(pool),
        per_class=preset.selection_per_class,
        classes=pool,
        seed=stream_seed(run.seed, "leep", "selection-task"),
    )
    return dataclasses.replace(spec, name="full-target")


def _selection_row(run: RunParams, preset: LEEPPreset, progress: bool, name: str) -> dict[str, Any]:
    ds = _dataset(run, preset.data, "main")
    spec = selection_task(run, preset)
    network = source_network(run, preset, name, progress=progress)
    # the two sources of §5.1-5.5 already have outputs on every image; the other candidates
    # are run on the rows of this target only
    which = "main" if name in SOURCES else "selection"
    out = _outputs(run, preset, name, which)
    labels = task_codes(ds, spec, spec.train_indices, "train")
    row: dict[str, Any] = {"candidate": name, "architecture": network.architecture}
    row.update(_score_values(run, preset, out, spec.train_indices, labels))
    train, test = np.asarray(ds.splits["train"]), np.asarray(ds.splits["test"])
    head = head_transfer(
        run,
        ds,
        [spec],
        out.features[train],
        train,
        out.features[test],
        test,
        "sgd",
        lr=preset.finetune.lr,
        batch_size=preset.finetune.batch_size,
        epochs=preset.selection_head_epochs,
        seed=stream_seed(run.seed, "leep", "selection-head", name),
    ).iloc[0]
    (history,) = _fine_tune_chunk(
        run,
        preset,
        which,
        name,
        preset.selection_finetune_epochs,
        ds,
        [spec],
        "selection",
        progress,
    )
    variant = name.removeprefix("efficientnet_lite")
    row.update(
        {
            "head_accuracy": float(head["accuracy"]),
            "finetune_accuracy": float(history["test_accuracy"].iloc[-1]),
            "majority_accuracy": float(head["majority_accuracy"]),
            "imagenet_top1": IMAGENET_TOP1[int(variant)] if variant.isdigit() else np.nan,
            "source_test_accuracy": network.test_accuracy,
            "source_majority_accuracy": network.majority_accuracy,
            "n_train": len(spec.train_indices),
            "n_test": len(spec.test_indices),
            "num_classes": spec.num_classes,
        }
    )
    return row


def run_source_selection(
    run: RunParams,
    preset: LEEPPreset,
    *,
    progress: bool = True,
    executor: Executor | None = None,
) -> pd.DataFrame:
    """Source-model selection (§5.7, Figs. 5, 9): every candidate on the full target.

    Returns
    -------
    DataFrame
        One row per candidate (:func:`selection_candidates`): the scores, ``head_accuracy``
        (SGD head), ``finetune_accuracy``, ``imagenet_top1`` (published; NaN for networks we
        train), ``majority_accuracy``, the source network's own test accuracy.
    """
    store = result_store(run, _MODULE, "source-selection", ("candidate",), preset)
    compute = functools.partial(_selection_row, run, preset, progress)
    return run_sweep(
        store,
        list(selection_candidates(preset)),
        compute,
        keys=lambda name: [{"candidate": name}],
        executor=executor,
        progress=progress,
        desc="source selection",
    )


# ------------------------------------------------------------------------------------------------
# Networks, correlations, levels and Table 1
# ------------------------------------------------------------------------------------------------


def leep_networks(run: RunParams, preset: LEEPPreset) -> list[Network]:
    """Every network we train as a source (the §5.1 source and the §5.7 candidates)."""
    return [
        source_network(run, preset, name)
        for name in selection_candidates(preset)
        if not name.startswith("efficientnet")
    ]


def correlation_table(
    table: pd.DataFrame,
    scores: Sequence[str],
    metric: str = "accuracy",
    by: Sequence[str] = ("setting", "method", "source"),
) -> pd.DataFrame:
    """Pearson r and p of each score against ``metric`` per group (tasks where both exist).

    Returns
    -------
    DataFrame
        One row per group and score: the group columns, ``score, n, r, p_value``.
    """
    rows = []
    for key, group in table.groupby(list(by), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        for score in scores:
            valid = group[[score, metric]].dropna()
            enough = len(valid) >= 3 and valid[score].nunique() > 1 and valid[metric].nunique() > 1
            r, p = pearson(valid[score], valid[metric]) if enough else (np.nan, np.nan)
            rows.append(
                {**dict(zip(by, key)), "score": score, "n": len(valid), "r": r, "p_value": p}
            )
    return pd.DataFrame(rows)


def level_table(
    table: pd.DataFrame, metric: str, n_levels: int, by: Sequence[str] = ("source", "method")
) -> pd.DataFrame:
    """Mean ``metric`` per LEEP transferability level (§5.2), per group."""
    parts = []
    for key, group in table.groupby(list(by), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        levels = transferability_levels(group["leep"], group[metric], n_levels)
        parts.append(levels.assign(**dict(zip(by, key))))
    return pd.concat(parts, ignore_index=True)


def table1(correlations: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 1 beside ours: per (method, source, setting) the paper's r and ours.

    ``correlations`` is :func:`correlation_table` of every setting (metric: accuracy, F1 for the
    imbalanced settings) and of the meta-transfer rows. A value ends in ``*`` when it is not
    significant (p > 0.05), as in the paper.
    """
    ours = correlations.set_index(["method", "source", "setting", "score"])
    rows = []
    for (method, source, setting), values in PAPER_TABLE1.items():
        row = {"method": method, "source": source, "setting": setting}
        for score, paper in zip(PAPER_SCORES, values[:3]):
            row[f"{score} (paper)"] = paper
            key = (method, source, setting, score)
            row[f"{score} (ours)"] = ours["r"].get(key, np.nan)
            row[f"{score} p (ours)"] = ours["p_value"].get(key, np.nan)
            row[f"{score} n (ours)"] = ours["n"].get(key, 0)
        row["h_score (paper) not significant"] = values[3]
        rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------
# Checks the pages report: the SGD schedule and the networks against their baselines
# ------------------------------------------------------------------------------------------------


def _schedule_rows(
    run: RunParams,
    preset: LEEPPreset,
    epochs: tuple[int, ...],
    item: tuple[str, tuple[TaskSpec, ...]],
) -> list[dict[str, Any]]:
    source, chunk = item
    ds = _dataset(run, preset.data, "main")
    out = _outputs(run, preset, source, "main")
    train, test = np.asarray(ds.splits["train"]), np.asarray(ds.splits["test"])
    rows = []
    for n_epochs in epochs:
        table = head_transfer(
            run,
            ds,
            list(chunk),
            out.features[train],
            train,
            out.features[test],
            test,
            "sgd",
            lr=preset.finetune.lr,
            batch_size=preset.finetune.batch_size,
            epochs=n_epochs,
            seed=stream_seed(run.seed, "leep", "heads", "large", source),
        )
        rows += [
            {"source": source, "task": spec.name, "epochs": n_epochs, "accuracy": float(acc)}
            for spec, acc in zip(chunk, table["accuracy"])
        ]
    return rows


def run_schedule_check(
    run: RunParams,
    preset: LEEPPreset,
    *,
    paper_epochs: int = 100,
    n_tasks: int = 8,
    progress: bool = True,
    executor: Executor | None = None,
) -> pd.DataFrame:
    """Re-trained heads after the preset's epochs and after the paper's 100, for both sources,
    on the ``n_tasks`` tasks of §5.1 with the fewest training images (cheap to run long).

    The heads of :func:`run_transfer` use the same seeds, so the preset's rows equal those.

    Returns
    -------
    DataFrame
        One row per (source, task, epochs): ``accuracy``, and ``leep`` of the task.
    """
    epochs = tuple(sorted({preset.large.head_epochs, paper_epochs}))
    tasks = sorted(setting_tasks(run, preset, "large"), key=lambda s: len(s.train_indices))
    items = [(source, tuple(tasks[:n_tasks])) for source in SOURCES]
    store = result_store(
        run, _MODULE, f"schedule-check-{paper_epochs}", ("source", "task", "epochs"), preset
    )
    compute = functools.partial(_schedule_rows, run, preset, epochs)
    table = run_sweep(
        store,
        items,
        compute,
        keys=lambda item: [
            {"source": item[0], "task": s.name, "epochs": e} for s in item[1] for e in epochs
        ],
        executor=executor,
        progress=progress,
        desc="SGD schedule check",
    )
    scores = pd.concat(
        [_scores(run, preset, "large", source, progress, executor) for source in SOURCES]
    )
    return table.merge(scores[["source", "task", "leep"]], on=["source", "task"])


def _trained(
    name: str, role: str, architecture: str, history: pd.DataFrame, majority: float, n_test: int
) -> Network:
    """A network of a sweep, known by its history only (its weights are not kept)."""
    return Network(
        name=name,
        role=role,
        architecture=architecture,
        key="",
        model=None,
        history=history,
        from_cache=True,
        majority_accuracy=majority,
        n_train=0,
        n_test=n_test,
    )


def _group_baselines(
    role: str, setting: str, architecture: str, table: pd.DataFrame, specs: dict[str, TaskSpec]
) -> dict[str, Any]:
    """One row of :func:`baseline_summary` for the per-epoch histories of many networks."""
    networks = [
        _trained(
            task,
            role,
            architecture,
            history,
            float(history["majority_accuracy"].iloc[0]),
            len(specs[task].test_indices),
        )
        for task, history in table.groupby("task", sort=False)
    ]
    margins = [n.test_accuracy - n.majority_accuracy for n in networks]
    return {
        "network": f"{len(networks)} tasks",
        "role": role,
        "setting": setting,
        "architecture": architecture,
        "networks": len(networks),
        "beat baseline": sum(n.beats_baseline() for n in networks),
        "test accuracy": float(np.mean([n.test_accuracy for n in networks])),
        "majority accuracy": float(np.mean([n.majority_accuracy for n in networks])),
        "smallest margin": min(margins),
    }


def beats_baseline(table: pd.DataFrame) -> pd.Series:
    """Per row of a :func:`run_transfer` table: whether ``accuracy`` beats ``majority_accuracy``
    by :meth:`~transferlib.experiments.sources.Network.baseline_margin` on ``n_test`` images."""
    return pd.Series(
        [
            _trained("", "", "", pd.DataFrame({"test_accuracy": [a]}), m, n).beats_baseline()
            for a, m, n in zip(table["accuracy"], table["majority_accuracy"], table["n_test"])
        ],
        index=table.index,
        dtype=bool,
    )


def finetune_baselines(
    run: RunParams, preset: LEEPPreset, settings: Sequence[str] = SETTINGS
) -> pd.DataFrame:
    """The fine-tuned networks of ``settings`` against their majority-class baselines, one row per
    (setting, source): how many beat it by
    :meth:`~transferlib.experiments.sources.Network.baseline_margin`, the mean test accuracy
    and baseline, the smallest margin. Reads the result stores (run the experiments first)."""
    rows = []
    for setting in settings:
        specs = {t.name: t for t in setting_tasks(run, preset, setting)}
        for source in SOURCES:
            tuned = _fine_tuning(run, preset, setting, source, False, None)
            rows.append(_group_baselines("fine-tuned", setting, source, tuned, specs))
    return pd.DataFrame(rows)


def run_loss_control(
    run: RunParams,
    preset: LEEPPreset,
    *,
    progress: bool = True,
    executor: Executor | None = None,
) -> pd.DataFrame:
    """The settings fine-tuned on the class-balanced loss, fine-tuned again on the paper's plain
    cross-entropy (same tasks, heads and batch order; the first ``preset.loss_control_tasks``
    fine-tuned tasks): why the preset weights the classes.

    Returns
    -------
    DataFrame
        One row per (setting, source, loss) as :func:`finetune_baselines`, with ``loss``
        (``"class-balanced"`` or ``"plain"``) and ``macro_f1`` (mean test F1), both losses on the
        same tasks. Empty when no setting of the preset uses the class-balanced loss.
    """
    rows = []
    for setting in SETTINGS:
        spec = preset.setting(setting)
        if not spec.class_balanced:
            continue
        n_tasks = min(spec.n_finetune, preset.loss_control_tasks or spec.n_finetune)
        plain = preset.replace(
            {setting.replace("-", "_"): {"class_balanced": False, "n_finetune": n_tasks}}
        )
        specs = {t.name: t for t in setting_tasks(run, preset, setting)[:n_tasks]}
        for source in SOURCES:
            for loss, variant in (("class-balanced", preset), ("plain", plain)):
                tuned = _fine_tuning(run, variant, setting, source, progress, executor)
                tuned = tuned[tuned["task"].isin(specs)]
                last = tuned[tuned["epoch"] == tuned["epoch"].max()]
                row = _group_baselines("fine-tuned", setting, source, tuned, specs)
                rows.append({**row, "loss": loss, "macro_f1": float(last["test_macro_f1"].mean())})
    return pd.DataFrame(rows)


def baseline_summary(run: RunParams, preset: LEEPPreset) -> pd.DataFrame:
    """Every trained network of the chapter against its majority-class baseline.

    Sources and §5.7 candidates one row each; fine-tuned networks and references (which are
    many) summarised per (role, setting, source) as in :func:`finetune_baselines`.
    Reads the result stores (run the experiments first).
    """
    rows = []
    for network in leep_networks(run, preset):
        rows.append(
            {
                "network": network.name,
                "role": "source",
                "setting": "—",
                "architecture": network.architecture,
                "networks": 1,
                "beat baseline": int(network.beats_baseline()),
                "test accuracy": network.test_accuracy,
                "majority accuracy": network.majority_accuracy,
                "smallest margin": network.test_accuracy - network.majority_accuracy,
            }
        )
    references = []
    for setting in ("small", "small-gray"):
        specs = {t.name: t for t in setting_tasks(run, preset, setting)}
        table = _references(run, preset, setting, False, None)
        model = preset.reference_training.model
        references.append(_group_baselines("reference", setting, model, table, specs))
    parts = [pd.DataFrame(rows), finetune_baselines(run, preset), pd.DataFrame(references)]
    return pd.concat(parts, ignore_index=True)


def below_baseline(run: RunParams, preset: LEEPPreset) -> pd.DataFrame:
    """The fine-tuned networks and references of :func:`baseline_summary` that do not beat their
    majority baseline, one row each, with the classes of the task (their names in the data set),
    so a reader can see what made the task hard. Reads the result stores.

    Returns
    -------
    DataFrame
        ``role, setting, network, task, classes, test accuracy, majority accuracy, margin``
        (the margin the network had to clear); empty when every network beats its baseline.
    """
    groups = [("fine-tuned", setting, source) for setting in SETTINGS for source in SOURCES]
    groups += [
        ("reference", setting, preset.reference_training.model)
        for setting in ("small", "small-gray")
    ]
    rows = []
    for role, setting, network in groups:
        specs = {t.name: t for t in setting_tasks(run, preset, setting)}
        table = (
            _fine_tuning(run, preset, setting, network, False, None)
            if role == "fine-tuned"
            else _references(run, preset, setting, False, None)
        )
        ds = _setting_dataset(run, preset, setting)
        names = ds.label_names.get(_label(ds))
        last = table[table["epoch"] == table["epoch"].max()]
        for task, accuracy, majority in zip(
            last["task"], last["test_accuracy"], last["majority_accuracy"]
        ):
            trained = _trained(
                task,
                role,
                network,
                pd.DataFrame({"test_accuracy": [accuracy]}),
                float(majority),
                len(specs[task].test_indices),
            )
            if trained.beats_baseline():
                continue
            classes = specs[task].classes
            rows.append(
                {
                    "role": role,
                    "setting": setting,
                    "network": network,
                    "task": task,
                    "classes": " / ".join(str(names[c]) if names else str(c) for c in classes),
                    "test accuracy": float(accuracy),
                    "majority accuracy": float(majority),
                    "margin": trained.baseline_margin(),
                }
            )
    columns = [
        "role",
        "setting",
        "network",
        "task",
        "classes",
        "test accuracy",
        "majority accuracy",
        "margin",
    ]
    return pd.DataFrame(rows, columns=columns)


def orientation_similarity(run: RunParams, preset: LEEPPreset, n_images: int = 300) -> pd.DataFrame:
    """How much a source's penultimate features change when a glyph is mirrored or turned upside
    down, next to another rendering of the same character and an unrelated image.

    ``n_images`` random images of the target pool (the named stream ``("leep", "orientation")``),
    each paired with its mirror image, itself upside down, another image of its class and a
    random image; features centred on the mean of all of them; the mean cosine similarity of each
    pair kind. A network whose mirror-image similarity exceeds its same-class similarity can barely
    tell a class from its mirror image (``<`` from ``>``).

    Returns
    -------
    DataFrame
        One row per source: ``source, mirrored, upside down, same class, other image``.
    """
    from transferlib.training import extract

    ds = _dataset(run, preset.data, "main")
    labels = ds.column(_label(ds))
    generator = rng(run.seed, "leep", "orientation")
    rows = generator.choice(len(ds), min(n_images, len(ds)), replace=False)
    same = np.array([generator.choice(np.flatnonzero(labels == labels[r])) for r in rows])
    other = generator.choice(len(ds), len(rows), replace=False)
    images = ds.images[rows]
    pairs = {
        "mirrored": images[..., ::-1].copy(),
        "upside down": images[..., ::-1, :].copy(),
        "same class": ds.images[same],
        "other image": ds.images[other],
    }
    table = []
    for source in SOURCES:
        model = source_network(run, preset, source).model
        features = {
            name: extract(model, batch, ("features",), device=run.device)["features"].astype(float)
            for name, batch in {"image": images, **pairs}.items()
        }
        centre = np.concatenate(list(features.values())).mean(axis=0)
        unit = {
            name: (f - centre) / np.linalg.norm(f - centre, axis=1, keepdims=True)
            for name, f in features.items()
        }
        table.append(
            {"source": source}
            | {name: float(np.mean(np.sum(unit["image"] * unit[name], axis=1))) for name in pairs}
        )
    return pd.DataFrame(table)


def bootstrap_difference(
    table: pd.DataFrame,
    first: str,
    second: str,
    metric: str,
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Pearson r of ``first`` minus that of ``second`` with ``metric``, and its bootstrap
    standard deviation over the tasks (tasks resampled with replacement).

    Where a small difference between two scores decides a claim, the spread says whether the
    difference is larger than what resampling the tasks alone produces.
    """
    data = table[[first, second, metric]].dropna().to_numpy(float)
    if len(data) < 4:
        return float("nan"), float("nan")

    def r(columns: np.ndarray, i: int) -> np.ndarray:
        x = columns[..., i] - columns[..., i].mean(-1, keepdims=True)
        y = columns[..., 2] - columns[..., 2].mean(-1, keepdims=True)
        denominator = np.sqrt((x * x).sum(-1) * (y * y).sum(-1))
        with np.errstate(invalid="ignore", divide="ignore"):
            return (x * y).sum(-1) / denominator

    difference = float(r(data, 0) - r(data, 1))
    picks = rng(seed, "leep", "bootstrap").integers(0, len(data), size=(n_boot, len(data)))
    samples = data[picks]
    spread = np.nanstd(r(samples, 0) - r(samples, 1))
    return difference, float(spread)
