"""Experiments of Bao et al. (ICIP 2019): H-score, normalised transferability, task selection,
higher-order transfer and the transfer curriculum.

The H-score of a feature ``f`` for a labelled task, ``tr(cov(f)^+ cov(E[f|Y]))``, is (up to a
constant) the optimal log-loss of a softmax head on ``f`` under a local approximation; divided by
its largest possible value ``||B_T||_F^2`` it is the normalised transferability ``T(S, T)``. The
runners reproduce the paper's Section 4 on the shared experiment layer:

* §4.1 / Fig. 2a -- :func:`run_layer_transfer`: H-score of pooled features from several depths
  of an ImageNet network (EfficientNet-Lite) for a 100-class target, against the log-loss and
  accuracies of a softmax head trained on each layer;
* §4.1 / Fig. 2b -- :func:`run_target_transfer`: normalised transferability to targets with
  3 to 20 classes; :func:`run_hgr_check`: ``||B_T||_F^2`` in closed form against a neural
  (Soft-HGR) estimate; :func:`run_small_data`: where the H-score breaks (few samples);
* §4.2 / Fig. 3 -- :func:`run_encoders`, :func:`run_task_transfer`: one encoder per task of the
  glyph-scenes world (:mod:`transferlib.data.glyph_scenes`), H-score transferability (per pixel
  for dense targets) against the empirical affinity of a frozen source encoder with a trained
  target readout; :func:`ranking_agreement`, :func:`task_linkage`;
* Figs. 4-5 -- :func:`run_pair_transfer`, :func:`pixel_h_scores`: pairs of sources, features
  concatenated;
* §4.3 / Figs. 6-7 -- :func:`spanning_tree`, :func:`run_curriculum` (does a task learn better
  from its parent in the tree?), :func:`run_attribute_transfer` (binary attribute tasks).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from transferlib.config import RunParams, register_presets
from transferlib.data import ImageDataset, TaskSpec, attribute_tasks, k_class_tasks
from transferlib.data.glyph_scenes import (
    CLASSIFICATION_TASKS,
    DENSE_TASKS,
    TASK_GROUPS,
    GlyphScenes,
    load_glyph_scenes,
)
from transferlib.evaluation import dcg, spearman
from transferlib.experiments.presets import (
    GLYPHS,
    DataSpec,
    Preset,
    TrainingSpec,
    rng,
    scaled,
    stream_seed,
)
from transferlib.experiments.protocols import head_transfer, task_codes
from transferlib.experiments.sources import (
    Network,
    majority_accuracy,
    network_outputs,
    pretrained_network,
    run_dataset,
    train_network,
)
from transferlib.experiments.sweep import result_store, run_sweep
from transferlib.scores import h_score, h_scores, shrinkage_h_score

__all__ = [
    "PRESETS",
    "HScorePreset",
    "WorldSpec",
    "association",
    "attribute_names",
    "dense_baseline_mse",
    "fit_palette",
    "layer_dataset",
    "layer_features",
    "layer_task",
    "palette_codes",
    "pixel_h_scores",
    "ranking_agreement",
    "ranking_matrix",
    "run_attribute_transfer",
    "run_curriculum",
    "run_encoders",
    "run_hgr_check",
    "run_layer_transfer",
    "run_pair_transfer",
    "run_small_data",
    "run_target_transfer",
    "run_task_transfer",
    "scene_world",
    "soft_hgr",
    "spanning_tree",
    "target_tasks",
    "task_encoder",
    "task_linkage",
    "world_codes",
]

_MODULE = __name__
#: A trained dense network "clearly beats" the per-pixel-mean map when its test MSE is at most
#: this fraction of the mean map's (R^2 >= 0.1).
DENSE_BASELINE_RATIO = 0.9


@dataclass(frozen=True)
class WorldSpec(Preset):
    """The glyph-scenes world of §4.2-4.3 and how its dense targets are scored.

    Attributes
    ----------
    n_images, image_size, n_objects
        Rendering (see :class:`~transferlib.data.GlyphScenesConfig`); a quarter of the images
        is the test split.
    superpixel : int
        Dense targets are compared on ``superpixel x superpixel`` blocks (the decoders predict
        maps of that resolution; the paper suggests super-pixels for large images).
    palette : int
        Colours each dense target's values are clustered into for the per-pixel H-score (16 in
        the paper).
    code_channels, downsamples : int
        The encoders' spatial code: ``code_channels x (image_size / 2**downsamples)^2`` numbers
        are the source features.
    readout_width : int
        Channels of the decoder trained on a frozen source code (the empirical affinity).
    """

    n_images: int
    image_size: int = 32
    n_objects: int = 10
    superpixel: int = 2
    palette: int = 16
    code_channels: int = 4
    downsamples: int = 2
    readout_width: int = 8


@dataclass(frozen=True)
class HScorePreset(Preset):
    """Settings of the chapter "H-score (Bao et al. 2019)".

    Attributes
    ----------
    data : DataSpec
        §4.1 images (the book's Glyphs set of the scale; CIFAR-100 with ``data_root``).
    network : str
        The ImageNet-pretrained source of §4.1 (``efficientnet_lite0`` ... ``lite2``).
    layers : tuple of str
        Its depths whose globally pooled outputs are scored (Fig. 2a).
    n_classes, train_per_class : int
        The §4.1 target: ``n_classes`` random classes, ``train_per_class`` training images each
        (all their test images).
    head_c, head_tol : float
        Inverse L2 penalty of the softmax (logistic) heads, and the gradient tolerance at which
        L-BFGS stops (fitted to convergence).
    ks, draws : tuple of int, int
        Fig. 2b: targets with ``k`` of the §4.1 classes for each ``k``, ``draws`` each.
    target_layer : str
        The layer of Fig. 2b (the paper: ResNet-50 4f).
    hgr_classes, hgr_steps : int
        The Soft-HGR check: a target with ``hgr_classes`` classes, full-batch Adam steps.
    world : WorldSpec
    encoder : TrainingSpec
        One encoder-decoder per world task (``model`` = ``"encoder_decoder"``).
    readout : TrainingSpec
        The target decoder trained on a frozen source code (empirical affinity).
    curriculum : TrainingSpec
        Training of a task with few labels, from its parent's encoder or from scratch.
    curriculum_labels, curriculum_seeds : int
        Labelled training images and seeds of the curriculum test.
    attributes : tuple of str or None
        Binary attribute tasks of the Fig. 7 stand-in (None: every attribute of the dataset).
        The book's list is the Glyphs attributes that a small network learns in a few epochs
        (position attributes do not survive global pooling, font and most character
        attributes need far longer training); relations between them are known by
        construction (size depends on case, the background colour on capitals, ...).
    attribute_train, attribute_test : int
        Images of the attribute networks.
    attribute_training : TrainingSpec
        One network per attribute.
    salience : float
        Transferability an edge of the attribute tree needs to be drawn as salient.
    small_data_per_class : tuple of int
        Training images per class at which the H-score's small-sample failure is measured.
    workers : int
        Processes the pages give the heavy sweeps (encoders, readouts, curriculum, attribute
        networks) through :func:`~transferlib.experiments.sweep.local_executor`; 1 computes in the
        page's process (the results are the same either way).
    """

    data: DataSpec
    network: str
    layers: tuple[str, ...]
    n_classes: int
    train_per_class: int
    head_c: float
    head_tol: float
    ks: tuple[int, ...]
    draws: int
    target_layer: str
    hgr_classes: int
    hgr_steps: int
    world: WorldSpec
    encoder: TrainingSpec
    readout: TrainingSpec
    curriculum: TrainingSpec
    curriculum_labels: int
    curriculum_seeds: int
    attributes: tuple[str, ...] | None
    attribute_train: int
    attribute_test: int
    attribute_training: TrainingSpec
    salience: float
    small_data_per_class: tuple[int, ...]
    workers: int = 2


BOOK = HScorePreset(
    data=GLYPHS["book"],
    network="efficientnet_lite0",
    layers=("stage2", "stage3", "stage4", "stage5", "stage6", "stage7", "head"),
    n_classes=100,
    train_per_class=50,
    head_c=1.0,
    head_tol=1e-4,
    ks=(3, 5, 10, 20),
    draws=5,
    target_layer="stage4",
    hgr_classes=3,
    hgr_steps=300,
    world=WorldSpec(n_images=4_000),
    encoder=TrainingSpec(model="encoder_decoder", epochs=6, lr=0.05, batch_size=64, width=16),
    readout=TrainingSpec(model="encoder_decoder", epochs=3, lr=0.1, batch_size=128, width=8),
    curriculum=TrainingSpec(model="encoder_decoder", epochs=10, lr=0.05, batch_size=32, width=16),
    curriculum_labels=300,
    curriculum_seeds=1,
    attributes=(
        "dark_background",
        "warm_foreground",
        "warm_background",
        "large",
        "small",
        "low_contrast",
        "noisy",
        "bold",
        "uppercase",
        "lowercase",
    ),
    attribute_train=3_000,
    attribute_test=1_000,
    attribute_training=TrainingSpec(model="small_cnn", epochs=3, lr=0.1, batch_size=128, width=8),
    salience=0.5,
    small_data_per_class=(2, 5, 10),
)
PRESETS: dict[str, HScorePreset] = scaled(
    BOOK,
    smoke={
        "data": GLYPHS["smoke"],
        "layers": ("stage3", "stage5", "stage6", "stage7", "head"),
        "n_classes": 20,
        "train_per_class": 8,
        "ks": (3, 5),
        "draws": 2,
        "target_layer": "stage3",
        "hgr_steps": 40,
        "world": {"n_images": 400, "code_channels": 1},
        "encoder": {"epochs": 1},
        "readout": {"epochs": 1},
        "curriculum": {"epochs": 1},
        "curriculum_labels": 60,
        "attributes": ("dark_background", "large", "small", "uppercase"),
        "attribute_train": 400,
        "attribute_test": 200,
        "attribute_training": {"epochs": 1},
        "small_data_per_class": (2, 4),
        "workers": 1,
    },
    full={
        "data": GLYPHS["full"],
        "network": "efficientnet_lite2",
        "layers": (
            "stem",
            "stage1",
            "stage2",
            "stage3",
            "stage4",
            "stage5",
            "stage6",
            "stage7",
            "head",
        ),
        "train_per_class": 400,
        "draws": 20,
        "target_layer": "stage7",
        "hgr_steps": 1000,
        "world": {"n_images": 20_000, "image_size": 64, "superpixel": 1, "code_channels": 8},
        "encoder": {"epochs": 30, "width": 32},
        "readout": {"epochs": 15, "width": 16},
        "curriculum": {"epochs": 30, "width": 32},
        "curriculum_labels": 1_000,
        "curriculum_seeds": 3,
        "attributes": None,
        "attribute_train": 40_000,
        "attribute_test": 10_000,
        "attribute_training": {"model": "resnet18", "epochs": 20, "width": None},
        "small_data_per_class": (2, 5, 10, 25, 100),
    },
)
register_presets("hscore", PRESETS, datasets=("glyphs", "cifar100"))


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch and the BLAS on one thread (also usable as a decorator).

    The problems here are small (convolutions on 32 px images, 256 x 256 factorisations), and
    on a shared machine threads lose far more to synchronisation than they gain. Measured on
    2 cores at load 8: an encoder-decoder trains at 1,016 images/s on one thread and 111 on two;
    EfficientNet-Lite0 at 64 px extracts 69 images/s against 30; twenty Cholesky factorisations
    of a 256 x 256 covariance take 0.05 s against 2.6 s with OpenBLAS on two threads.
    """
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(threads)


def association(x: Any, y: Any, method: str = "spearman") -> tuple[float, float]:
    """Correlation (``"spearman"`` or ``"pearson"``) and its p-value, or ``(nan, nan)`` when
    either side is constant or has fewer than three values (tiny runs, e.g. at smoke scale)."""
    from transferlib.evaluation import pearson

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan")
    return {"spearman": spearman, "pearson": pearson}[method](x, y)


# ------------------------------------------------------------------------------------------------
# §4.1: layers and targets of an ImageNet network
# ------------------------------------------------------------------------------------------------


def layer_dataset(run: RunParams, preset: HScorePreset) -> ImageDataset:
    """The §4.1 dataset (Glyphs of the scale, or the run's real dataset)."""
    return run_dataset(run, preset.data)


def layer_task(run: RunParams, preset: HScorePreset) -> TaskSpec:
    """The §4.1 target: ``n_classes`` random classes, ``train_per_class`` training images each."""
    ds = layer_dataset(run, preset)
    (spec,) = k_class_tasks(
        ds,
        ks=(preset.n_classes,),
        n_tasks_per_k=1,
        per_class=preset.train_per_class,
        seed=stream_seed(run.seed, "hscore", "layer-task"),
    )
    return replace(spec, name=f"{preset.n_classes}-class")


def target_tasks(run: RunParams, preset: HScorePreset) -> list[TaskSpec]:
    """Fig. 2b targets: ``draws`` random ``k``-class subsets of the §4.1 classes for each ``k``.

    Each keeps the §4.1 task's training images of its classes (so every feature is extracted
    once) and all their test images.
    """
    ds = layer_dataset(run, preset)
    base = layer_task(run, preset)
    specs = k_class_tasks(
        ds,
        ks=preset.ks,
        n_tasks_per_k=preset.draws,
        classes=base.classes,
        seed=stream_seed(run.seed, "hscore", "target-tasks"),
    )
    return [
        replace(
            spec,
            name=f"k{spec.num_classes:02d}-{i % preset.draws}",
            train_indices=np.intersect1d(spec.train_indices, base.train_indices),
            params={**spec.params, "draw": i % preset.draws},
        )
        for i, spec in enumerate(specs)
    ]


def _pretrained(run: RunParams, preset: HScorePreset) -> Network:
    return _packaged(preset.network, preset.data.pretrained_input_size, run.device)


@functools.lru_cache(maxsize=2)
def _packaged(name: str, input_size: int, device: str) -> Network:
    return pretrained_network(name, input_size=input_size, device=device)


def layer_features(
    run: RunParams, preset: HScorePreset, split: str, layers: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Pooled outputs of the §4.1 network at ``layers`` on the §4.1 task's ``split`` images.

    Cached per layer and image set by :func:`~transferlib.experiments.sources.network_outputs`.
    """
    spec = layer_task(run, preset)
    rows = {"train": spec.train_indices, "test": spec.test_indices}[split]
    images = np.asarray(layer_dataset(run, preset).images[rows])
    wanted = tuple(preset.layers if layers is None else layers)
    with _one_thread():
        return network_outputs(run, _pretrained(run, preset), images, wanted)


def _positions(rows: np.ndarray, subset: np.ndarray) -> np.ndarray:
    """Positions of ``subset`` (a subset of the sorted ``rows``) in ``rows``."""
    return np.searchsorted(rows, subset)


def _head_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Log-losses (nats) from the head table's log-likelihoods."""
    return table.assign(
        train_log_loss=-table["train_log_likelihood"], test_log_loss=-table["test_log_likelihood"]
    )


@_one_thread()
def _layer_row(run: RunParams, preset: HScorePreset, layer: str) -> dict[str, Any]:
    ds = layer_dataset(run, preset)
    spec = layer_task(run, preset)
    train = layer_features(run, preset, "train", [layer])[layer]
    test = layer_features(run, preset, "test", [layer])[layer]
    labels = task_codes(ds, spec, spec.train_indices, "train")
    head = _head_rows(
        head_transfer(
            run,
            ds,
            [spec],
            train,
            spec.train_indices,
            test,
            spec.test_indices,
            "logistic",
            C=preset.head_c,
            tol=preset.head_tol,
        )
    ).iloc[0]
    score = h_score(train, labels)
    null = _null_h_score(train, labels, stream_seed(run.seed, "hscore", "null", layer))
    return {
        "layer": layer,
        "depth": list(_pretrained(run, preset).model.layers).index(layer),
        "dim": int(train.shape[1]),
        "h_score": score,
        "transferability": score / (spec.num_classes - 1),
        "null_h_score": null,
        "label_entropy": _entropy(labels),
        "train_log_loss": float(head["train_log_loss"]),
        "test_log_loss": float(head["test_log_loss"]),
        "train_accuracy": float(head["train_accuracy"]),
        "test_accuracy": float(head["accuracy"]),
        "majority_accuracy": float(head["majority_accuracy"]),
        "num_classes": spec.num_classes,
        "n_train": int(spec.train_indices.size),
        "n_test": int(spec.test_indices.size),
    }


def run_layer_transfer(
    run: RunParams, preset: HScorePreset, *, progress: bool = True, executor: Executor | None = None
) -> pd.DataFrame:
    """H-score of each layer against a softmax head trained on it (§4.1, Fig. 2a).

    For each layer of ``preset.layers``: the H-score of its pooled outputs for the
    ``n_classes``-class target (eq. 4), the normalised transferability ``H / (K - 1)``, and a
    multinomial logistic head fitted to convergence on the same training features: its training
    and test log-loss (nats) and accuracy.

    Returns
    -------
    DataFrame
        One row per layer: ``layer, depth, dim, h_score, transferability, null_h_score`` (for
        labels permuted across the images: the score's small-sample bias), ``label_entropy``
        (``H(Y)``, nats), ``train_log_loss, test_log_loss, train_accuracy, test_accuracy,
        majority_accuracy, num_classes, n_train, n_test``.
    """
    layer_features(run, preset, "train")  # one forward pass for every layer
    layer_features(run, preset, "test")
    store = result_store(run, _MODULE, "layer-transfer", ("layer",), preset)
    return run_sweep(
        store,
        list(preset.layers),
        functools.partial(_layer_row, run, preset),
        keys=lambda layer: [{"layer": layer}],
        executor=executor,
        progress=progress,
        desc="layers",
    )


def _entropy(labels: np.ndarray) -> float:
    """Entropy (nats) of the empirical label distribution."""
    p = np.bincount(labels) / labels.size
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def _null_h_score(features: np.ndarray, labels: np.ndarray, seed: int) -> float:
    """H-score of the features for a random permutation of the labels: its small-sample bias."""
    permuted = np.random.default_rng(seed).permutation(labels)
    return float(h_scores(features, permuted[:, None])[0])


@_one_thread()
def _target_rows(run: RunParams, preset: HScorePreset, k: int) -> list[dict[str, Any]]:
    ds = layer_dataset(run, preset)
    base = layer_task(run, preset)
    specs = [s for s in target_tasks(run, preset) if s.num_classes == k]
    layer = preset.target_layer
    train_all = layer_features(run, preset, "train", [layer])[layer]
    test_all = layer_features(run, preset, "test", [layer])[layer]
    heads = _head_rows(
        head_transfer(
            run,
            ds,
            specs,
            train_all,
            base.train_indices,
            test_all,
            base.test_indices,
            "logistic",
            C=preset.head_c,
            tol=preset.head_tol,
        )
    )
    rows = []
    for spec, head in zip(specs, heads.itertuples(index=False)):
        features = train_all[_positions(base.train_indices, spec.train_indices)]
        labels = task_codes(ds, spec, spec.train_indices, "train")
        score = h_score(features, labels)
        null = _null_h_score(features, labels, stream_seed(run.seed, "hscore", "null", spec.name))
        rows.append(
            {
                "task": spec.name,
                "k": k,
                "draw": int(spec.params["draw"]),
                "layer": layer,
                "h_score": score,
                "transferability": score / (k - 1),
                "null_transferability": null / (k - 1),
                "train_log_loss": float(head.train_log_loss),
                "test_log_loss": float(head.test_log_loss),
                "train_accuracy": float(head.train_accuracy),
                "test_accuracy": float(head.accuracy),
                "majority_accuracy": float(head.majority_accuracy),
                "n_train": int(spec.train_indices.size),
                "n_test": int(spec.test_indices.size),
                "dim": int(features.shape[1]),
            }
        )
    return rows


def run_target_transfer(
    run: RunParams, preset: HScorePreset, *, progress: bool = True, executor: Executor | None = None
) -> pd.DataFrame:
    """Normalised transferability to targets with different numbers of classes (§4.1, Fig. 2b).

    For each target of :func:`target_tasks`: ``T = H / (K - 1)`` of the ``target_layer``
    features (the denominator is ``||B_T||_F^2`` for labels that are a function of the image,
    see :func:`run_hgr_check`), the same for randomly permuted labels (the H-score's bias at
    this sample size), and a logistic head's log-losses and accuracies.

    Returns
    -------
    DataFrame
        One row per target: ``task, k, draw, layer, h_score, transferability,
        null_transferability, train_log_loss, test_log_loss, train_accuracy, test_accuracy,
        majority_accuracy, n_train, n_test, dim``.
    """
    layer_features(run, preset, "train")
    layer_features(run, preset, "test")
    store = result_store(run, _MODULE, "target-transfer", ("task",), preset)
    specs = target_tasks(run, preset)
    return run_sweep(
        store,
        list(preset.ks),
        functools.partial(_target_rows, run, preset),
        keys=lambda k: [{"task": s.name} for s in specs if s.num_classes == k],
        executor=executor,
        progress=progress,
        desc="targets",
    )


@_one_thread()
def _small_data_rows(run: RunParams, preset: HScorePreset, per_class: int) -> list[dict[str, Any]]:
    ds = layer_dataset(run, preset)
    spec = layer_task(run, preset)
    labels = task_codes(ds, spec, spec.train_indices, "train")
    order = rng(run.seed, "hscore", "small-data").permutation(spec.train_indices.size)
    # The first per_class images of each class in one fixed order: sizes are nested.
    rank = np.empty_like(order)
    ranked_labels = labels[order]
    for c in np.unique(labels):
        members = ranked_labels == c
        rank[order[members]] = np.arange(members.sum())
    keep = np.sort(np.flatnonzero(rank < per_class))
    small = replace(spec, train_indices=spec.train_indices[keep])
    train = layer_features(run, preset, "train")
    test = layer_features(run, preset, "test")
    rows = []
    for layer in preset.layers:
        head = head_transfer(
            run,
            ds,
            [small],
            train[layer][keep],
            small.train_indices,
            test[layer],
            spec.test_indices,
            "logistic",
            C=preset.head_c,
            tol=preset.head_tol,
        ).iloc[0]
        rows.append(
            {
                "per_class": per_class,
                "layer": layer,
                "dim": int(train[layer].shape[1]),
                "n_train": int(keep.size),
                "h_score": h_score(train[layer][keep], labels[keep]),
                "shrinkage_h_score": shrinkage_h_score(train[layer][keep], labels[keep]),
                "max_h_score": spec.num_classes - 1,
                "test_accuracy": float(head["accuracy"]),
            }
        )
    return rows


def run_small_data(
    run: RunParams, preset: HScorePreset, *, progress: bool = True, executor: Executor | None = None
) -> pd.DataFrame:
    """Layer selection with few training images per class: where the H-score breaks.

    For each size in ``preset.small_data_per_class`` (nested random subsets of the §4.1
    training images, the same number per class), every layer's H-score, its Ledoit-Wolf
    shrinkage variant (Ibrahim et al. 2022), and the test accuracy of a logistic head trained on
    the subset. With fewer images than feature dimensions the sample covariance is singular and
    the H-score reaches its maximum ``K - 1`` whatever the features.

    Returns
    -------
    DataFrame
        One row per (size, layer): ``per_class, layer, dim, n_train, h_score,
        shrinkage_h_score, max_h_score, test_accuracy``.
    """
    store = result_store(run, _MODULE, "small-data", ("per_class", "layer"), preset)
    sizes = [n for n in preset.small_data_per_class if n < preset.train_per_class]
    return run_sweep(
        store,
        sizes,
        functools.partial(_small_data_rows, run, preset),
        keys=lambda n: [{"per_class": n, "layer": layer} for layer in preset.layers],
        executor=executor,
        progress=progress,
        desc="small data",
    )


def soft_hgr(f: Any, g: Any) -> Any:
    r"""Soft-HGR objective of Wang et al. (2019) for paired feature batches ``f``, ``g`` (n, k).

    .. math:: \mathbb E[\tilde f^\top \tilde g] - \tfrac12 \mathrm{tr}\big(\mathrm{cov}(f)\,
              \mathrm{cov}(g)\big), \qquad \tilde f = f - \mathbb E f,\ \tilde g = g - \mathbb E g

    Its maximum over functions ``f(X)``, ``g(Y)`` with ``k >= |Y| - 1`` is
    :math:`\frac12 \sum_i \rho_i^2 = \frac12 \|\tilde B\|_F^2`, half the squared HGR maximal
    correlations (torch tensors; differentiable).
    """
    n = f.shape[0]
    f = f - f.mean(0, keepdim=True)
    g = g - g.mean(0, keepdim=True)
    return (f * g).sum(1).mean() - 0.5 * ((f.T @ f / n) * (g.T @ g / n)).sum()


@_one_thread()
def _hgr_rows(run: RunParams, preset: HScorePreset, _item: str) -> list[dict[str, Any]]:
    import torch

    ds = layer_dataset(run, preset)
    base = layer_task(run, preset)
    classes = rng(run.seed, "hscore", "hgr-classes").choice(
        np.asarray(base.classes), size=preset.hgr_classes, replace=False
    )
    spec = replace(base, name="hgr", classes=tuple(int(c) for c in np.sort(classes)))
    column = ds.column(spec.target)
    train_rows = spec.train_indices[np.isin(column[spec.train_indices], spec.classes)]
    test_rows = spec.test_indices[np.isin(column[spec.test_indices], spec.classes)]
    layer = preset.target_layer
    train = layer_features(run, preset, "train", [layer])[layer]
    test = layer_features(run, preset, "test", [layer])[layer]
    x_train = train[_positions(base.train_indices, train_rows)]
    x_test = test[_positions(base.test_indices, test_rows)]
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    y_train = task_codes(ds, spec, train_rows, "train")
    y_test = task_codes(ds, spec, test_rows, "test")
    k = preset.hgr_classes - 1
    torch.manual_seed(stream_seed(run.seed, "hscore", "soft-hgr"))
    f = torch.nn.Sequential(
        torch.nn.Linear(x_train.shape[1], 128), torch.nn.ReLU(), torch.nn.Linear(128, k)
    ).double()
    g = torch.nn.Embedding(preset.hgr_classes, k).double()
    optimizer = torch.optim.Adam([*f.parameters(), *g.parameters()], lr=3e-3)
    xs = [torch.as_tensor((x - mean) / std, dtype=torch.float64) for x in (x_train, x_test)]
    ys = [torch.as_tensor(y) for y in (y_train, y_test)]
    rows = []
    for step in range(preset.hgr_steps + 1):
        if step % max(1, preset.hgr_steps // 30) == 0 or step == preset.hgr_steps:
            with torch.no_grad():
                estimates = [2 * float(soft_hgr(f(x), g(y))) for x, y in zip(xs, ys)]
            rows.append(
                {"step": step, "train_estimate": estimates[0], "test_estimate": estimates[1]}
            )
        if step < preset.hgr_steps:
            loss = -soft_hgr(f(xs[0]), g(ys[0]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    h = h_score(x_train, y_train)
    for row in rows:
        row.update(
            closed_form=float(preset.hgr_classes - 1),
            h_score=h,
            layer=layer,
            num_classes=preset.hgr_classes,
            n_train=int(train_rows.size),
            n_test=int(test_rows.size),
        )
    return rows


def run_hgr_check(
    run: RunParams, preset: HScorePreset, *, progress: bool = True, executor: Executor | None = None
) -> pd.DataFrame:
    """``||B_T||_F^2`` for image inputs: the closed form against a neural HGR estimate.

    When the label is a function of the image and every training image is distinct, the
    empirical DTM has ``||B_T||_F^2 = |Y| - 1`` exactly (the denominator of ``T(S, T)``). The
    check trains the two sides of the HGR problem with the Soft-HGR objective of Wang et al.
    (2019): ``f`` an MLP on the ``target_layer`` features of the images, ``g`` an embedding of
    the ``hgr_classes`` labels; twice the objective estimates ``sum_i rho_i^2``.

    Returns
    -------
    DataFrame
        One row per logged step: ``step, train_estimate, test_estimate, closed_form, h_score``
        (of the features themselves), ``layer, num_classes, n_train, n_test``.
    """
    store = result_store(run, _MODULE, "hgr-check", ("step",), preset)
    steps = sorted(
        {s for s in range(0, preset.hgr_steps + 1, max(1, preset.hgr_steps // 30))}
        | {preset.hgr_steps}
    )
    return run_sweep(
        store,
        ["soft-hgr"],
        functools.partial(_hgr_rows, run, preset),
        keys=lambda _: [{"step": s} for s in steps],
        executor=executor,
        progress=progress,
        desc="soft-HGR",
    )


# ------------------------------------------------------------------------------------------------
# The multi-task world (§4.2-4.3)
# ------------------------------------------------------------------------------------------------


def _check_world_run(run: RunParams) -> None:
    if run.dataset != "glyphs":
        raise ValueError(
            "the multi-task world is rendered from Glyphs; run the task-transfer pages with "
            f"dataset='glyphs' (got {run.dataset!r}; dataset selects the data of §4.1 only)"
        )


def scene_world(run: RunParams, preset: HScorePreset) -> GlyphScenes:
    """The glyph-scenes world of the run's scale (rendered once, then read from the cache)."""
    _check_world_run(run)
    world = preset.world
    return _world(world.n_images, world.image_size, world.n_objects, run.seed, run.cache_dir)


@functools.lru_cache(maxsize=2)
def _world(
    n_images: int, image_size: int, n_objects: int, seed: int, cache_dir: str | None
) -> GlyphScenes:
    return load_glyph_scenes(n_images, image_size, seed, n_objects=n_objects, cache_dir=cache_dir)


def fit_palette(values: np.ndarray, n_colours: int = 16, max_iter: int = 100) -> np.ndarray:
    """Palette of ``n_colours`` values for a dense target: 1-D k-means (Lloyd) of its values.

    Starts from evenly spaced quantiles and stops when no value changes cluster; a target with
    at most ``n_colours`` distinct values gets exactly those. Returns sorted centres.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0 or not np.isfinite(values).all():
        raise ValueError("values must be a non-empty array of finite numbers")
    if isinstance(n_colours, bool) or not isinstance(n_colours, int) or n_colours < 2:
        raise ValueError(f"n_colours must be an integer >= 2, got {n_colours!r}")
    distinct = np.unique(values)
    if distinct.size <= n_colours:
        return distinct
    centres = np.unique(np.quantile(values, (np.arange(n_colours) + 0.5) / n_colours))
    codes = None
    for _ in range(max_iter):
        new = palette_codes(values, centres)
        if codes is not None and np.array_equal(new, codes):
            break
        codes = new
        sums = np.bincount(codes, weights=values, minlength=centres.size)
        counts = np.bincount(codes, minlength=centres.size)
        centres = np.unique(np.where(counts > 0, sums / np.maximum(counts, 1), centres))
    return centres


def palette_codes(values: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest palette centre (sorted ``centres``) for every value."""
    values = np.asarray(values, dtype=np.float64)
    boundaries = (centres[1:] + centres[:-1]) / 2
    return np.searchsorted(boundaries, values).astype(np.int64)


def _rows(run: RunParams, preset: HScorePreset) -> tuple[np.ndarray, np.ndarray]:
    splits = scene_world(run, preset).dataset.splits
    return splits["train"], splits["test"]


def _dense_targets(
    run: RunParams, preset: HScorePreset, task: str
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test maps of a dense task, standardised by the training mean and deviation."""
    world = scene_world(run, preset)
    train_rows, test_rows = _rows(run, preset)
    train = world.target(task, train_rows, preset.world.superpixel)
    test = world.target(task, test_rows, preset.world.superpixel)
    mean, std = float(train.mean()), float(train.std())
    return (train - mean) / std, (test - mean) / std


def _targets(
    run: RunParams, preset: HScorePreset, task: str
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """``(model kwargs, train targets, test targets)`` of a world task."""
    train_rows, test_rows = _rows(run, preset)
    if task in CLASSIFICATION_TASKS:
        column = scene_world(run, preset).dataset.column(task)
        return {"num_classes": int(column.max()) + 1}, column[train_rows], column[test_rows]
    train, test = _dense_targets(run, preset, task)
    return {"num_classes": 1, "dense": True}, train, test


def _architecture(preset: HScorePreset, training: TrainingSpec) -> dict[str, Any]:
    world = preset.world
    return {
        "width": training.width,
        "code_channels": world.code_channels,
        "image_size": world.image_size,
        "downsamples": world.downsamples,
        "upsamples": world.downsamples - int(np.log2(world.superpixel)),
    }


def dense_baseline_mse(train: np.ndarray, test: np.ndarray) -> float:
    """Test MSE of the trivial dense predictor: the per-pixel mean of the training maps."""
    return float(np.mean((test - train.mean(axis=0)) ** 2))


def _trivial_loss(task: str, train: np.ndarray, test: np.ndarray) -> float:
    """Test loss of the trivial predictor: training class frequencies (cross-entropy, nats) for
    classification, the per-pixel training mean (MSE) for dense targets."""
    if task in DENSE_TASKS:
        return dense_baseline_mse(train, test)
    frequencies = np.bincount(train, minlength=int(max(train.max(), test.max())) + 1) / train.size
    return float(-np.mean(np.log(np.maximum(frequencies[test], 1e-12))))


def task_encoder(
    run: RunParams, preset: HScorePreset, task: str, *, progress: bool = False
) -> Network:
    """The encoder-decoder trained on world task ``task`` (trained once, then cached)."""
    from transferlib.training.encoder_decoder import train_encoder_decoder_cached

    if task not in TASK_GROUPS:
        raise ValueError(f"unknown world task {task!r}; valid: {list(TASK_GROUPS)}")
    world = scene_world(run, preset)
    train_rows, test_rows = _rows(run, preset)
    kwargs, train, test = _targets(run, preset, task)
    training = preset.encoder
    with _one_thread():
        result = train_encoder_decoder_cached(
            world.dataset.images[train_rows],
            train,
            world.dataset.images[test_rows],
            test,
            model_kwargs={**kwargs, **_architecture(preset, training)},
            epochs=training.epochs,
            lr=training.lr,
            batch_size=training.batch_size,
            momentum=training.momentum,
            weight_decay=training.weight_decay,
            seed=stream_seed(run.seed, "hscore", "encoder", task),
            device=run.device,
            cache_dir=run.cache_dir,
            progress=progress,
            desc=f"encoder {task}",
        )
    dense = task in DENSE_TASKS
    return Network(
        name=task,
        role="source",
        architecture="encoder_decoder",
        key=str(result.key),
        model=result.model,
        history=result.history,
        from_cache=result.from_cache,
        majority_accuracy=None if dense else majority_accuracy(train, test),
        n_train=len(train),
        n_test=len(test),
    )


@_one_thread()
def _encoder_row(run: RunParams, preset: HScorePreset, progress: bool, task: str) -> dict[str, Any]:
    network = task_encoder(run, preset, task, progress=progress)
    _, train, test = _targets(run, preset, task)
    last = network.history.iloc[-1]
    dense = task in DENSE_TASKS
    trivial = _trivial_loss(task, train, test)
    if dense:
        metric, value, baseline = "test MSE (standardised)", float(last["test_loss"]), trivial
        beats = value <= DENSE_BASELINE_RATIO * baseline
    else:
        metric, value = "test accuracy", float(last["test_accuracy"])
        baseline = float(network.majority_accuracy)
        beats = network.beats_baseline()
    return {
        "task": task,
        "group": TASK_GROUPS[task],
        "metric": metric,
        "value": value,
        "trivial": baseline,
        "beats_baseline": bool(beats),
        "test_loss": float(last["test_loss"]),
        "trivial_loss": trivial,
        "epochs": len(network.history),
        "seconds": float(last["seconds"]),
        "n_train": network.n_train,
        "n_test": network.n_test,
    }


def run_encoders(
    run: RunParams, preset: HScorePreset, *, progress: bool = True, executor: Executor | None = None
) -> pd.DataFrame:
    """Train (or load) one encoder-decoder per world task and compare it with a trivial baseline.

    Classification tasks: test accuracy against the majority class (clearly above: by
    :meth:`Network.baseline_margin`). Dense tasks (targets standardised by their training mean
    and deviation): test MSE against the per-pixel mean of the training maps (clearly below: at
    most :data:`DENSE_BASELINE_RATIO` of it, i.e. ``R^2 >= 0.1``).

    Returns
    -------
    DataFrame
        One row per task: ``task, group, metric, value, trivial, beats_baseline, test_loss,
        trivial_loss, epochs, seconds, n_train, n_test``.
    """
    store = result_store(run, _MODULE, "encoders", ("task",), preset)
    return run_sweep(
        store,
        list(TASK_GROUPS),
        functools.partial(_encoder_row, run, preset, progress),
        keys=lambda task: [{"task": task}],
        executor=executor,
        progress=progress,
        desc="encoders",
    )


def world_codes(run: RunParams, preset: HScorePreset, source: str, split: str) -> np.ndarray:
    """The source encoder's flattened spatial codes of the world's ``split`` images (cached)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return _world_codes(run, preset, source, split)


@functools.lru_cache(maxsize=32)
def _world_codes(run: RunParams, preset: HScorePreset, source: str, split: str) -> np.ndarray:
    network = task_encoder(run, preset, source)
    rows = dict(zip(("train", "test"), _rows(run, preset)))[split]
    images = scene_world(run, preset).dataset.images[rows]
    with _one_thread():
        return network_outputs(run, network, images, ("code",))["code"]


@functools.lru_cache(maxsize=16)
def _task_labels(run: RunParams, preset: HScorePreset, task: str) -> np.ndarray:
    """``(n_train, pixels)`` palette codes of a dense task's training maps (one palette per task,
    fitted on its training pixels), or ``(n_train, 1)`` class codes of a classification task."""
    train_rows, _ = _rows(run, preset)
    world = scene_world(run, preset)
    if task in CLASSIFICATION_TASKS:
        return world.dataset.column(task)[train_rows][:, None]
    maps = world.target(task, train_rows, preset.world.superpixel).reshape(len(train_rows), -1)
    return palette_codes(maps, fit_palette(maps, preset.world.palette))


@functools.lru_cache(maxsize=64)
def _pixel_scores(
    run: RunParams, preset: HScorePreset, sources: tuple[str, ...], permuted: bool = False
) -> dict[str, np.ndarray]:
    """H-score of every labeling (pixel) of every task for the concatenated codes of ``sources``
    (``permuted``: images shuffled against their labels, the small-sample bias). On a GPU run the
    codes go to the device, and :func:`~transferlib.scores.h_scores` computes there."""
    features = np.hstack([world_codes(run, preset, s, "train") for s in sources])
    if run.device != "cpu":
        import torch

        from transferlib.training import resolve_device

        device = resolve_device(run.device)
        if device.type != "cpu":
            features = torch.as_tensor(features, device=device)
    order = rng(run.seed, "hscore", "null", *sources).permutation(len(features))
    scores = {}
    for task in TASK_GROUPS:  # one task at a time bounds the memory of the label pass
        labels = _task_labels(run, preset, task)
        scores[task] = h_scores(features, labels[order] if permuted else labels)
    return scores


@functools.lru_cache(maxsize=16)
def _classes_per_column(run: RunParams, preset: HScorePreset, task: str) -> np.ndarray:
    block = np.sort(_task_labels(run, preset, task), axis=0)
    return 1 + (block[1:] != block[:-1]).sum(axis=0)


def pixel_h_scores(
    run: RunParams,
    preset: HScorePreset,
    target: str,
    sources: Sequence[str],
    normalised: bool = False,
) -> np.ndarray:
    """Per-pixel H-scores of the concatenated codes of ``sources`` for a dense ``target``.

    The target's training maps are clustered into the preset's palette; every (super-)pixel's
    palette index is one labeling of the training images, and all of them are scored at once by
    :func:`~transferlib.scores.h_scores`, with one factorisation of the code covariance. Returns a map of the target's resolution (``normalised``: divided by
    ``K_p - 1``, NaN where a pixel has a single colour).
    """
    if target not in DENSE_TASKS:
        raise ValueError(f"pixel H-scores need a dense target, one of {DENSE_TASKS}")
    scores = _pixel_scores(run, preset, tuple(sources))[target]
    if normalised:
        classes = _classes_per_column(run, preset, target)
        with np.errstate(invalid="ignore", divide="ignore"):
            scores = np.where(classes > 1, scores / (classes - 1), np.nan)
    side = preset.world.image_size // preset.world.superpixel
    return scores.reshape(side, side)


def _transfer_scores(
    run: RunParams, preset: HScorePreset, sources: tuple[str, ...], target: str
) -> dict[str, float]:
    """Mean H-score and normalised transferability over a target's labelings (pixels), and the
    mean H-score for images shuffled against their labels."""
    raw = _pixel_scores(run, preset, sources)[target]
    classes = _classes_per_column(run, preset, target)
    usable = classes > 1
    return {
        "h_score": float(raw.mean()),
        "transferability": float(np.mean(raw[usable] / (classes[usable] - 1))),
        "null_h_score": float(_pixel_scores(run, preset, sources, permuted=True)[target].mean()),
    }


def _affinity(
    run: RunParams, preset: HScorePreset, source: Network, target: str
) -> dict[str, float]:
    """Empirical affinity: test loss of a readout trained on the frozen source encoder."""
    from transferlib.training.encoder_decoder import train_encoder_decoder_cached

    world = scene_world(run, preset)
    train_rows, test_rows = _rows(run, preset)
    kwargs, train, test = _targets(run, preset, target)
    if target in CLASSIFICATION_TASKS:
        spec = TaskSpec(
            name=target,
            target=target,
            kind="multi_task",
            classes=tuple(range(kwargs["num_classes"])),
            train_indices=train_rows,
            test_indices=test_rows,
            params={"dataset": world.dataset.name},
        )
        head = head_transfer(
            run,
            world.dataset,
            [spec],
            world_codes(run, preset, source.name, "train"),
            train_rows,
            world_codes(run, preset, source.name, "test"),
            test_rows,
            "logistic",
            C=preset.head_c,
            tol=preset.head_tol,
        ).iloc[0]
        loss, accuracy = -float(head["test_log_likelihood"]), float(head["accuracy"])
    else:
        readout = preset.readout
        result = train_encoder_decoder_cached(
            world.dataset.images[train_rows],
            train,
            world.dataset.images[test_rows],
            test,
            model_kwargs={**kwargs, "width": readout.width},
            init=(source.key, source.model),
            freeze_encoder=True,
            epochs=readout.epochs,
            lr=readout.lr,
            batch_size=readout.batch_size,
            momentum=readout.momentum,
            weight_decay=readout.weight_decay,
            seed=stream_seed(run.seed, "hscore", "readout", source.name, target),
            device=run.device,
            cache_dir=run.cache_dir,
            progress=False,
            desc=f"readout {source.name} -> {target}",
        )
        loss, accuracy = float(result.history["test_loss"].iloc[-1]), float("nan")
    trivial = _trivial_loss(target, train, test)
    return {"affinity_loss": loss, "relative_loss": loss / trivial, "affinity_accuracy": accuracy}


@_one_thread()
def _source_rows(run: RunParams, preset: HScorePreset, source: str) -> list[dict[str, Any]]:
    network = task_encoder(run, preset, source)
    features = world_codes(run, preset, source, "train")
    rows = []
    for target in TASK_GROUPS:
        if target == source:
            continue
        scores = _transfer_scores(run, preset, (source,), target)
        rows.append(
            {
                "source": source,
                "target": target,
                "source_group": TASK_GROUPS[source],
                "target_group": TASK_GROUPS[target],
                **scores,
                **_affinity(run, preset, network, target),
                "dim": int(features.shape[1]),
            }
        )
    return rows


def _pairs_of(source: str) -> list[dict[str, str]]:
    return [{"source": source, "target": t} for t in TASK_GROUPS if t != source]


def run_task_transfer(
    run: RunParams, preset: HScorePreset, *, progress: bool = True, executor: Executor | None = None
) -> pd.DataFrame:
    """H-score transferability and empirical affinity for every (source, target) pair (§4.2).

    For each source task's encoder (:func:`task_encoder`) and every other task:

    * ``h_score`` -- the H-score of the source codes for the target on the training images; for
      a dense target the mean over (super-)pixels of the H-score for each pixel's palette colour
      (``preset.world.palette`` colours fitted on the training pixels), as in the paper;
      ``transferability`` divides each pixel's score by ``K_p - 1``; ``null_h_score`` is the
      same mean for images shuffled against their labels (the score's small-sample bias);
    * ``affinity_loss`` -- the test loss of a readout trained on the frozen source code: a
      logistic head (cross-entropy) for classification targets, a decoder (MSE of standardised
      maps) for dense ones; ``relative_loss`` divides it by the trivial predictor's loss.

    Returns
    -------
    DataFrame
        One row per (source, target): ``source, target, source_group, target_group, h_score,
        transferability, null_h_score, affinity_loss, relative_loss, affinity_accuracy, dim``.
    """
    store = result_store(run, _MODULE, "task-transfer", ("source", "target"), preset)
    return run_sweep(
        store,
        list(TASK_GROUPS),
        functools.partial(_source_rows, run, preset),
        keys=_pairs_of,
        executor=executor,
        progress=progress,
        desc="sources",
    )


def ranking_matrix(
    transfer: pd.DataFrame, column: str, higher_is_better: bool = True
) -> pd.DataFrame:
    """Rank (1 = best) of every source for every target by ``column``; targets in rows."""
    table = transfer.pivot(index="target", columns="source", values=column)
    order = list(TASK_GROUPS)
    table = table.reindex(
        index=[t for t in order if t in table.index],
        columns=[s for s in order if s in table.columns],
    )
    return table.rank(axis=1, ascending=not higher_is_better, method="min")


def ranking_agreement(transfer: pd.DataFrame, score: str = "h_score") -> pd.DataFrame:
    """Per target, how well the ``score`` ranking of sources matches the affinity ranking.

    * ``spearman`` / ``p_value`` -- rank correlation of the score with the negative affinity
      loss;
    * ``ndcg`` -- DCG of the score's ranking with relevance = the number of sources a source
      beats by affinity, divided by the DCG of the affinity ranking itself; ``ndcg_random`` is
      the expected value for a random ranking (the same mean relevance at every position);
    * ``top1_match``, ``top2_match`` -- the best source, and the set of the two best, agree.

    Returns
    -------
    DataFrame
        One row per target.
    """
    rows = []
    for target, group in transfer.groupby("target", sort=False):
        scores = group[score].to_numpy(float)
        affinity = -group["affinity_loss"].to_numpy(float)
        relevance = pd.Series(affinity).rank(method="min").to_numpy() - 1
        ideal = dcg(relevance, relevance)
        discounts = 1 / np.log2(np.arange(2, len(scores) + 2))
        rho, p = association(scores, affinity)
        by_score = np.argsort(-scores, kind="stable")
        by_affinity = np.argsort(-affinity, kind="stable")
        rows.append(
            {
                "target": target,
                "target_group": TASK_GROUPS[target],
                "spearman": rho,
                "p_value": p,
                "ndcg": dcg(scores, relevance) / ideal,
                "ndcg_random": relevance.mean() * discounts.sum() / ideal,
                "top1_match": bool(by_score[0] == by_affinity[0]),
                "top2_match": bool(set(by_score[:2]) == set(by_affinity[:2])),
                "n_sources": len(scores),
            }
        )
    order = {t: i for i, t in enumerate(TASK_GROUPS)}
    return (
        pd.DataFrame(rows).sort_values("target", key=lambda s: s.map(order)).reset_index(drop=True)
    )


def task_linkage(
    transfer: pd.DataFrame, column: str = "transferability"
) -> tuple[np.ndarray, list[str]]:
    """Agglomerative clustering of the tasks' transferability vectors (Fig. 3, dendrogram).

    Each task is the vector of ``column`` from every source to it (its row of the
    transferability matrix; the diagonal, a task to itself, is set to the largest value of its
    row); average linkage on Euclidean distances, as ``scipy.cluster.hierarchy.linkage``.

    Returns
    -------
    (linkage matrix, task names in the matrix's order)
    """
    from scipy.cluster.hierarchy import linkage

    matrix = transfer.pivot(index="target", columns="source", values=column)
    names = [t for t in TASK_GROUPS if t in matrix.index]
    matrix = matrix.reindex(index=names, columns=names).to_numpy(float, copy=True)
    fill = np.nanmax(matrix, axis=1)
    matrix[np.isnan(matrix)] = np.repeat(fill, np.isnan(matrix).sum(1))
    return linkage(matrix, method="average"), names


# ------------------------------------------------------------------------------------------------
# Higher-order transfer (Figs. 4-5)
# ------------------------------------------------------------------------------------------------


@_one_thread()
def _pair_rows(run: RunParams, preset: HScorePreset, pair: tuple[str, str]) -> list[dict[str, Any]]:
    joint = _pixel_scores(run, preset, pair)
    singles = [_pixel_scores(run, preset, (source,)) for source in pair]
    rows = []
    for target in TASK_GROUPS:
        if target in pair:
            continue
        a, b = (single[target] for single in singles)
        best = max(a.mean(), b.mean())
        row = {
            "source_a": pair[0],
            "source_b": pair[1],
            "target": target,
            "h_score": float(joint[target].mean()),
            "best_single": float(best),
            "gain": float(joint[target].mean() - best),
            "pattern_correlation": float("nan"),
        }
        if target in DENSE_TASKS and a.std() > 0 and b.std() > 0:
            row["pattern_correlation"] = float(np.corrcoef(a, b)[0, 1])
        rows.append(row)
    return rows


def run_pair_transfer(
    run: RunParams, preset: HScorePreset, *, progress: bool = True, executor: Executor | None = None
) -> pd.DataFrame:
    """Second-order transferability: every pair of sources, codes concatenated (Figs. 4-5).

    For each pair of source encoders and every target that is neither of them: the H-score of
    the concatenated codes (mean over pixels for dense targets), the better of the two single
    sources, the gain of the pair over it, and, for dense targets, the Pearson correlation of the
    two sources' per-pixel H-score maps (their "transferability patterns").

    Returns
    -------
    DataFrame
        One row per (source_a, source_b, target): ``h_score, best_single, gain,
        pattern_correlation``.
    """
    pairs = list(itertools.combinations(TASK_GROUPS, 2))
    store = result_store(run, _MODULE, "pair-transfer", ("source_a", "source_b", "target"), preset)
    return run_sweep(
        store,
        pairs,
        functools.partial(_pair_rows, run, preset),
        keys=lambda pair: [
            {"source_a": pair[0], "source_b": pair[1], "target": t}
            for t in TASK_GROUPS
            if t not in pair
        ],
        executor=executor,
        progress=progress,
        desc="source pairs",
    )


# ------------------------------------------------------------------------------------------------
# Curriculum (§4.3, Figs. 6-7)
# ------------------------------------------------------------------------------------------------


def spanning_tree(
    transfer: pd.DataFrame, column: str = "transferability", root: str | None = None
) -> pd.DataFrame:
    """Minimum spanning tree of the task graph, directed away from a root (the curriculum).

    Tasks ``a`` and ``b`` are joined by an edge of weight ``2 - max(T(a, b), T(b, a))``: it
    decreases in the larger transferability of the pair (the paper's heuristic), and stays
    positive for transferabilities in [0, 1]. The root, the first task to label, is the task
    whose code transfers best on average (largest mean ``column`` as a source) unless given.

    Returns
    -------
    DataFrame
        One row per edge, parent to child in breadth-first order from the root: ``parent,
        child, transferability`` (the larger of the two directions), ``forward`` (``column``
        from parent to child), ``depth`` (of the child).
    """
    from scipy.sparse.csgraph import breadth_first_order, minimum_spanning_tree

    tasks = list(dict.fromkeys([*transfer["source"], *transfer["target"]]))
    index = {t: i for i, t in enumerate(tasks)}
    score = np.full((len(tasks), len(tasks)), np.nan)
    for row in transfer[["source", "target", column]].itertuples(index=False):
        score[index[row[0]], index[row[1]]] = row[2]
    larger = np.fmax(score, score.T)
    weights = np.where(np.isnan(larger), 0.0, 2.0 - larger)
    np.fill_diagonal(weights, 0.0)
    tree = minimum_spanning_tree(np.triu(weights)).toarray()
    tree = tree + tree.T
    if root is None:
        root = tasks[int(np.nanargmax(np.nanmean(score, axis=1)))]
    order, parents = breadth_first_order(tree, index[root], directed=False)
    depth = {index[root]: 0}
    rows = []
    for child in order[1:]:
        parent = parents[child]
        depth[child] = depth[parent] + 1
        rows.append(
            {
                "parent": tasks[parent],
                "child": tasks[child],
                "transferability": float(larger[parent, child]),
                "forward": float(score[parent, child]),
                "depth": depth[child],
            }
        )
    return pd.DataFrame(rows, columns=["parent", "child", "transferability", "forward", "depth"])


@_one_thread()
def _curriculum_rows(
    run: RunParams, preset: HScorePreset, item: tuple[str, str, str, int]
) -> dict[str, Any]:
    from transferlib.training.encoder_decoder import train_encoder_decoder_cached

    task, init, start, seed = item
    world = scene_world(run, preset)
    train_rows, test_rows = _rows(run, preset)
    kwargs, train, test = _targets(run, preset, task)
    picked = np.sort(
        rng(run.seed, "hscore", "curriculum-rows").permutation(len(train_rows))[
            : preset.curriculum_labels
        ]
    )
    training = preset.curriculum
    source = None if start == "" else task_encoder(run, preset, start)
    result = train_encoder_decoder_cached(
        world.dataset.images[train_rows[picked]],
        train[picked],
        world.dataset.images[test_rows],
        test,
        model_kwargs={**kwargs, **_architecture(preset, training)},
        init=None if source is None else (source.key, source.model),
        epochs=training.epochs,
        lr=training.lr,
        batch_size=training.batch_size,
        momentum=training.momentum,
        weight_decay=training.weight_decay,
        seed=stream_seed(run.seed, "hscore", "curriculum", task, seed),
        test_every=training.epochs,
        device=run.device,
        cache_dir=run.cache_dir,
        progress=False,
        desc=f"{task} from {start or 'scratch'}",
    )
    last = result.history.iloc[-1]
    trivial = _trivial_loss(task, train[picked], test)
    return {
        "task": task,
        "init": init,
        "seed": seed,
        "start": start or "scratch",
        "test_loss": float(last["test_loss"]),
        "relative_loss": float(last["test_loss"]) / trivial,
        "test_accuracy": float(last["test_accuracy"]),
        "n_labels": int(picked.size),
        "epochs": training.epochs,
    }


def run_curriculum(
    run: RunParams, preset: HScorePreset, *, progress: bool = True, executor: Executor | None = None
) -> pd.DataFrame:
    """Test the curriculum: does a task learn better from its parent's encoder?

    The tree predicts that a task's parent is a good place to start learning it. For every
    child of the world's task tree (:func:`spanning_tree` of :func:`run_task_transfer`), with ``curriculum_labels`` labelled
    training images and the same training budget (epochs, learning rate, batch size), train the
    task's encoder-decoder three ways: from its parent's encoder (``init="parent"``), from
    random weights (``"scratch"``), and from the encoder of the source the graph ranks lowest
    for it (``"worst"``, a control: is it the parent, or any pre-training?). Every layer trains.

    Returns
    -------
    DataFrame
        One row per (task, init, seed): ``start`` (the source task or ``"scratch"``),
        ``test_loss, relative_loss`` (to the trivial predictor), ``test_accuracy`` (NaN for
        dense tasks), ``n_labels, epochs``.
    """
    transfer = run_task_transfer(run, preset, progress=progress, executor=executor)
    tree = spanning_tree(transfer)
    items = []
    for edge in tree.itertuples(index=False):
        candidates = transfer[
            (transfer["target"] == edge.child) & (transfer["source"] != edge.parent)
        ]
        worst = candidates.sort_values("transferability", kind="stable")["source"].iloc[0]
        for seed in range(preset.curriculum_seeds):
            items += [
                (edge.child, "parent", edge.parent, seed),
                (edge.child, "scratch", "", seed),
                (edge.child, "worst", worst, seed),
            ]
    store = result_store(run, _MODULE, "curriculum", ("task", "init", "seed"), preset)
    return run_sweep(
        store,
        items,
        functools.partial(_curriculum_rows, run, preset),
        keys=lambda item: [{"task": item[0], "init": item[1], "seed": item[3]}],
        executor=executor,
        progress=progress,
        desc="curriculum",
    )


def attribute_names(ds: ImageDataset, names: Sequence[str] | None = None) -> list[str]:
    """``names`` after checking that ``ds`` has them, or every binary attribute of ``ds`` with
    two values, most balanced first (largest training entropy; table order on ties)."""
    if names is not None:
        unknown = [a for a in names if a not in ds.attribute_kinds]
        if unknown:
            raise ValueError(f"{ds.name} has no attribute(s) {unknown}; valid: {ds.attributes}")
        return list(names)
    rates = ds.labels[ds.attributes].iloc[ds.splits["train"]].mean().to_numpy()
    entropy = -(
        rates * np.log(np.clip(rates, 1e-12, 1))
        + (1 - rates) * np.log(np.clip(1 - rates, 1e-12, 1))
    )
    order = np.argsort(-entropy, kind="stable")
    usable = [ds.attributes[i] for i in order if 0 < rates[i] < 1]
    if len(usable) < 2:
        raise ValueError(
            f"{ds.name} has {len(usable)} usable binary attribute(s); the attribute curriculum "
            "needs a dataset with attributes (glyphs, celeba, awa2, cub200)"
        )
    return usable


def _attribute_specs(run: RunParams, preset: HScorePreset) -> list[TaskSpec]:
    ds = layer_dataset(run, preset)
    generator = rng(run.seed, "hscore", "attribute-rows")
    train = np.sort(generator.choice(ds.splits["train"], preset.attribute_train, replace=False))
    test = np.sort(generator.choice(ds.splits["test"], preset.attribute_test, replace=False))
    names = attribute_names(ds, preset.attributes)
    return [replace(s, train_indices=train, test_indices=test) for s in attribute_tasks(ds, names)]


@_one_thread()
def _attribute_rows(
    run: RunParams, preset: HScorePreset, progress: bool, source: str
) -> list[dict[str, Any]]:
    ds = layer_dataset(run, preset)
    specs = {s.target: s for s in _attribute_specs(run, preset)}
    spec = specs[source]
    network = train_network(
        run, ds, spec, preset.attribute_training, role="source", progress=progress
    )
    features = network_outputs(run, network, ds.images[spec.train_indices], ("features",))[
        "features"
    ]
    names = list(specs)
    labels = ds.labels[names].to_numpy()[spec.train_indices]
    scores = h_scores(features, labels, normalised=True)
    return [
        {
            "source": source,
            "target": target,
            "source_kind": ds.attribute_kinds.get(source, "other"),
            "target_kind": ds.attribute_kinds.get(target, "other"),
            "transferability": float(score),
            "source_test_accuracy": network.test_accuracy,
            "source_majority_accuracy": network.majority_accuracy,
            "source_beats_baseline": network.beats_baseline(),
        }
        for target, score in zip(names, scores)
        if target != source
    ]


def run_attribute_transfer(
    run: RunParams, preset: HScorePreset, *, progress: bool = True, executor: Executor | None = None
) -> pd.DataFrame:
    """Transferability between binary attribute tasks (the stand-in for Fig. 7's NUS-WIDE).

    One network per attribute (``preset.attribute_training``), trained on the attribute; the
    normalised transferability ``T(S, T) = H_T(f_S) / (2 - 1)`` of its penultimate features for
    every other attribute, all targets at once with :func:`~transferlib.scores.h_scores`.

    Returns
    -------
    DataFrame
        One row per (source, target): ``source_kind, target_kind, transferability,
        source_test_accuracy, source_majority_accuracy, source_beats_baseline``.
    """
    names = [s.target for s in _attribute_specs(run, preset)]
    store = result_store(run, _MODULE, "attribute-transfer", ("source", "target"), preset)
    return run_sweep(
        store,
        names,
        functools.partial(_attribute_rows, run, preset, progress),
        keys=lambda source: [{"source": source, "target": t} for t in names if t != source],
        executor=executor,
        progress=progress,
        desc="attribute networks",
    )
