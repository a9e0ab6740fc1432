"""The LEEP chapter's runners (Nguyen et al. 2020) at a tiny scale, and its helpers.

The runners train real (tiny) networks and run the packaged EfficientNet-Lite0 on a few hundred
32-pixel Glyphs images; the module shares one cache so that networks train once.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from transferlib.config import RunParams
from transferlib.experiments import leep
from transferlib.experiments.presets import DataSpec

_TINY_SETTING = {"n_tasks": 4, "n_finetune": 2, "head_epochs": 2, "finetune_epochs": 2}
TINY = leep.PRESETS["smoke"].replace(
    {
        "data": DataSpec(n_images=1_320, pretrained_input_size=32),
        "source_training": {"epochs": 2, "width": 4},
        "large": {**_TINY_SETTING, "max_classes": 6},
        "small": {**_TINY_SETTING, "per_class": 5},
        "small_gray": {**_TINY_SETTING, "per_class": 8},
        "imbalanced": {**_TINY_SETTING, "minority": (2, 2)},
        "imbalanced_gray": {**_TINY_SETTING, "minority": (3, 4)},
        "finetune": {"stack_size": 2},
        "reference_training": {"epochs": 2},
        "meta": {"train_episodes": 6, "n_episodes": 4},
        "beyond_paper_max_train": 0,
    }
)


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory) -> RunParams:
    return RunParams(scale="smoke", device="cpu", cache_dir=str(tmp_path_factory.mktemp("leep")))


# ------------------------------------------------------------------------------------------
# Presets and tasks (no training)
# ------------------------------------------------------------------------------------------


def test_book_preset_meets_the_task_counts_and_full_is_the_papers_protocol():
    book, full = leep.PRESETS["book"], leep.PRESETS["full"]
    for setting in leep.SETTINGS:
        assert book.setting(setting).n_tasks >= 60
        assert book.setting(setting).n_finetune >= 24
        assert full.setting(setting).n_tasks == 200
    assert full.large.head_epochs == full.large.finetune_epochs == 100
    assert full.imbalanced.minority == (30, 60) and full.imbalanced.ratio == 5
    assert full.finetune.cuts == () and full.finetune.lr == 0.01 and full.finetune.batch_size == 10
    for setting in ("imbalanced", "imbalanced-gray"):  # the paper's plain loss at full scale
        assert book.setting(setting).class_balanced and not full.setting(setting).class_balanced
    assert len(leep.selection_candidates(book)) >= 6
    with pytest.raises(ValueError, match="unknown setting"):
        book.setting("huge")


def test_fine_tune_cut_by_architecture():
    book = leep.PRESETS["book"]
    assert leep.fine_tune_cut(book, "efficientnet_lite2") == "stage7"
    assert leep.fine_tune_cut(book, "resnet20") == "layer3.1"
    assert leep.fine_tune_cut(leep.PRESETS["full"], "resnet20") is None


def test_tasks_keep_the_source_classes_out_and_follow_their_constructors(shared_run):
    source, pool = leep._class_pools(shared_run, TINY)
    assert len(source) == TINY.n_source_classes and not set(source) & set(pool)
    ds = leep._dataset(shared_run, TINY.data, "main")
    column = ds.column("char")
    for setting in ("large", "small", "imbalanced"):
        for spec in leep.setting_tasks(shared_run, TINY, setting):
            assert set(column[spec.train_indices]) <= set(pool)
    for spec in leep.setting_tasks(shared_run, TINY, "imbalanced"):
        counts = np.bincount(column[spec.train_indices])
        assert sorted(counts[counts > 0].tolist()) == [2, 10]  # minority 2, ratio 5
    gray = leep._dataset(shared_run, TINY.data, "gray")
    assert gray.name == "digits" and gray.images.shape[1:] == (3, 32, 32)
    (spec,) = leep.setting_tasks(shared_run, TINY, "small-gray")[:1]
    assert len(spec.train_indices) == 4 * 8 and spec.num_classes == 4
    _, source_spec = leep.source_task(shared_run, TINY)
    assert set(column[source_spec.train_indices]) == set(source)


def test_score_names_follow_the_size_rules():
    book = leep.PRESETS["book"]
    assert leep.score_names(book, 250, 5) == list(leep.PAPER_SCORES + leep.BEYOND_PAPER_SCORES)
    assert "nleep" not in leep.score_names(book, 250, 50)  # fewer than 2 per component
    assert leep.score_names(book, 5_000, 50) == list(leep.PAPER_SCORES)


# ------------------------------------------------------------------------------------------
# Tables from correlations (no training)
# ------------------------------------------------------------------------------------------


def test_unbounded_logme_is_left_out_and_the_other_scores_kept():
    # Features that contain the class indicators: a linear head fits the task exactly, LogME is
    # +inf; the task keeps every other score.
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 30)
    indicators = np.stack([labels == 0, labels == 1], axis=1)
    features = np.hstack([indicators, rng.normal(size=(60, 3))]).astype(np.float32)
    probs = rng.dirichlet(np.ones(4), size=60).astype(np.float32)
    out = leep._Outputs(probs=probs, features=features, inputs=torch.zeros(60), cut=None)
    preset = leep.PRESETS["smoke"].replace({"beyond_paper_max_train": 100})
    run = RunParams(device="cpu")
    values = leep._score_values(run, preset, out, np.arange(60), labels)
    assert np.isnan(values["logme"])
    assert np.isfinite([values[s] for s in ("leep", "nce", "h_score", "gbc", "transrate")]).all()


def test_correlation_table_levels_and_table1_layout():
    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    table = pd.DataFrame(
        {
            "setting": "small",
            "method": "re-train head",
            "source": "resnet20",
            "leep": x,
            "nce": rng.normal(size=40),
            "h_score": x + rng.normal(size=40),
            "accuracy": x + 0.1 * rng.normal(size=40),
        }
    )
    correlations = leep.correlation_table(table, ["leep", "nce", "h_score"])
    r = correlations.set_index("score")["r"]
    assert r["leep"] > 0.9 and abs(r["nce"]) < 0.5 and 0.5 < r["h_score"] < r["leep"]
    levels = leep.level_table(table, "accuracy", 5)
    assert levels["count"].sum() == 40 and levels["mean_metric"].is_monotonic_increasing
    layout = leep.table1(correlations)
    assert len(layout) == len(leep.PAPER_TABLE1) == 21
    row = layout[
        (layout["setting"] == "small")
        & (layout["source"] == "resnet20")
        & (layout["method"] == "re-train head")
    ].iloc[0]
    assert row["leep (paper)"] == 0.744 and row["leep (ours)"] == pytest.approx(r["leep"])
    assert np.isnan(layout[layout["setting"] == "large"]["leep (ours)"]).all()


def test_bootstrap_difference_separates_a_better_score_from_noise():
    rng = np.random.default_rng(1)
    accuracy = rng.normal(size=200)
    table = pd.DataFrame(
        {
            "good": accuracy + 0.3 * rng.normal(size=200),
            "bad": accuracy + 3.0 * rng.normal(size=200),
            "accuracy": accuracy,
        }
    )
    difference, spread = leep.bootstrap_difference(table, "good", "bad", "accuracy")
    assert difference > 4 * spread > 0
    same, same_spread = leep.bootstrap_difference(table, "good", "good", "accuracy")
    assert same == 0.0 and same_spread == 0.0


# ------------------------------------------------------------------------------------------
# Runners (tiny networks)
# ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_transfer_table_and_resuming_an_interrupted_sweep(shared_run, monkeypatch):
    table = leep.run_transfer(shared_run, TINY, "small", progress=False)
    spec = TINY.small
    assert len(table) == 2 * (spec.n_tasks + spec.n_finetune)
    assert set(table["method"]) == set(leep.METHODS) and set(table["source"]) == set(leep.SOURCES)
    assert table["leep"].lt(0).all() and table["accuracy"].between(0, 1).all()
    finetuned = table[table["method"] == "fine-tune"]
    assert (finetuned["epochs"] == spec.finetune_epochs).all()

    # Interrupt the head sweep of another setting after its first chunk; the rerun computes the
    # missing chunk only.
    calls = []
    original = leep._head_rows

    def failing(run, preset, setting, source, chunk):
        calls.append(chunk)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(run, preset, setting, source, chunk)

    tiny = TINY.replace({"imbalanced": {"n_tasks": 30}})  # two chunks of 20 and 10 tasks
    monkeypatch.setattr(leep, "_head_rows", failing)
    with pytest.raises(KeyboardInterrupt):
        leep._heads(shared_run, tiny, "imbalanced", "resnet20", False, None)
    calls.clear()
    monkeypatch.setattr(leep, "_head_rows", lambda *a: calls.append(a[-1]) or original(*a))
    heads = leep._heads(shared_run, tiny, "imbalanced", "resnet20", False, None)
    assert len(heads) == 30 and len(calls) == 1 and len(calls[0]) == 10


def test_beats_baseline_applies_the_networks_margin_per_row():
    table = pd.DataFrame(
        {
            "accuracy": [0.70, 0.65, 0.52, 0.30],
            "majority_accuracy": [0.5, 0.5, 0.5, 0.2],
            "n_test": [40, 40, 4000, 100],
        }
    )
    # margins: 2 * sqrt(0.25 / 40) = 0.158 (twice), the two-point floor, 2 * 0.04 = 0.08
    assert leep.beats_baseline(table).tolist() == [True, False, False, True]


def test_stacks_put_tasks_of_like_size_together_largest_first(shared_run):
    tasks = leep.setting_tasks(shared_run, TINY.replace({"large": {"n_tasks": 7}}), "large")
    stacks = leep._stacks(tasks, 3)
    assert [len(s) for s in stacks] == [3, 3, 1]
    sizes = [len(spec.train_indices) for stack in stacks for spec in stack]
    assert sizes == sorted(sizes, reverse=True)
    assert sorted(spec.name for stack in stacks for spec in stack) == sorted(t.name for t in tasks)


@pytest.mark.slow
def test_fine_tuning_does_not_depend_on_stacks_or_worker_processes(shared_run):
    """Stacks of one task on two worker processes give the rows of one stack in this process
    (train_stacked is exact), in the order of the tasks."""
    from transferlib.experiments.sweep import local_executor

    tiny = TINY.replace({"large": {"n_finetune": 3}, "finetune": {"stack_size": 3}})
    together = leep._fine_tuning(shared_run, tiny, "large", "resnet20", False, None)
    apart = tiny.replace({"finetune": {"stack_size": 1}})
    with local_executor(shared_run, 2) as executor:
        separate = leep._fine_tuning(shared_run, apart, "large", "resnet20", False, executor)
    names = [spec.name for spec in leep.setting_tasks(shared_run, tiny, "large")[:3]]
    assert list(together["task"].unique()) == list(separate["task"].unique()) == names
    np.testing.assert_allclose(together["train_loss"], separate["train_loss"], atol=1e-4)
    np.testing.assert_allclose(together["test_accuracy"], separate["test_accuracy"], atol=0.05)


@pytest.mark.slow
def test_loss_control_compares_both_losses_on_the_same_first_tasks(shared_run):
    tiny = TINY.replace(
        {
            "imbalanced": {"n_finetune": 3, "class_balanced": True},
            "imbalanced_gray": {"class_balanced": False},
            "loss_control_tasks": 2,
        }
    )
    control = leep.run_loss_control(shared_run, tiny, progress=False)
    assert set(control["setting"]) == {"imbalanced"}  # the only class-balanced setting
    assert sorted(control["loss"].unique()) == ["class-balanced", "plain"]
    assert (control["networks"] == 2).all() and len(control) == 2 * len(leep.SOURCES)
    balanced = leep._fine_tuning(shared_run, tiny, "imbalanced", "resnet20", False, None)
    first = [spec.name for spec in leep.setting_tasks(shared_run, tiny, "imbalanced")[:2]]
    last = balanced[balanced["epoch"] == balanced["epoch"].max()].set_index("task")
    row = control[(control["architecture"] == "resnet20") & (control["loss"] == "class-balanced")]
    assert row["test accuracy"].item() == pytest.approx(last.loc[first, "test_accuracy"].mean())


@pytest.mark.slow
def test_properties_and_convergence_at_tiny_scale(shared_run):
    settings = ("small", "small-gray")
    properties = leep.run_properties(shared_run, TINY, settings=settings, progress=False)
    assert len(properties) == 2 * sum(TINY.setting(s).n_tasks for s in settings)
    np.testing.assert_allclose(
        properties["property2_bound"], properties["nce"] + properties["mean_log_top"]
    )
    assert set(properties["property1_certified_by"]) <= {
        "re-trained head",
        "converged logistic head",
        "none",
    }
    convergence = leep.run_convergence(shared_run, TINY, progress=False)
    assert set(convergence["setting"]) == {"small", "small-gray"}
    assert convergence["level"].between(1, TINY.n_levels).all()
    np.testing.assert_allclose(
        convergence["difference"], convergence["accuracy"] - convergence["reference_accuracy"]
    )


@pytest.mark.slow
def test_below_baseline_lists_exactly_the_networks_the_summary_counts_as_failing(shared_run):
    for setting in leep.SETTINGS:
        leep.run_transfer(shared_run, TINY, setting, progress=False)
    leep.run_convergence(shared_run, TINY, progress=False)
    summary = leep.baseline_summary(shared_run, TINY)
    trained = summary[summary["role"] != "source"]
    below = leep.below_baseline(shared_run, TINY)
    failing = (trained["networks"] - trained["beat baseline"]).sum()
    assert len(below) == failing > 0  # tiny networks on 2-epoch schedules do fail
    assert (below["test accuracy"] <= below["majority accuracy"] + below["margin"]).all()
    names = leep.setting_dataset(shared_run, TINY, "large").label_names["char"]
    pool = below[below["setting"].isin(["large", "small", "imbalanced"])]
    for row in pool.itertuples():
        spec = next(
            t for t in leep.setting_tasks(shared_run, TINY, row.setting) if t.name == row.task
        )
        assert row.classes == " / ".join(names[c] for c in spec.classes)


@pytest.mark.slow
def test_meta_transfer_uses_held_out_classes(shared_run):
    train_classes, held_out = leep._meta_pools(shared_run, TINY)
    assert not set(train_classes) & set(held_out)
    ds = leep._dataset(shared_run, TINY.data, "main")
    for episode in leep.meta_episodes(shared_run, TINY):
        assert set(ds.column("char")[episode.train_indices]) <= set(held_out)
    meta = leep.run_meta_transfer(shared_run, TINY, progress=False)
    assert len(meta) == TINY.meta.n_episodes and meta["accuracy"].between(0, 1).all()
    assert (Path(shared_run.cache_dir) / "models").is_dir()  # the meta-trained model is cached


def test_orientation_similarity_is_one_for_a_symmetric_image_set(shared_run, monkeypatch):
    """Images symmetric under both flips give identical features: similarity 1 for both kinds."""
    table = leep.orientation_similarity(shared_run, TINY, n_images=40)
    assert list(table["source"]) == list(leep.SOURCES)
    values = table.drop(columns="source").to_numpy()
    assert np.all((values >= -1 - 1e-9) & (values <= 1 + 1e-9))
    real = leep._dataset
    symmetric = real(shared_run, TINY.data, "main")
    images = symmetric.images.copy()
    images = np.maximum(images, images[..., ::-1])
    images = np.maximum(images, images[..., ::-1, :])
    monkeypatch.setattr(leep, "_dataset", lambda *a: dataclasses.replace(symmetric, images=images))
    flipped = leep.orientation_similarity(shared_run, TINY, n_images=40)
    np.testing.assert_allclose(flipped[["mirrored", "upside down"]], 1.0, atol=1e-6)
    assert (flipped["other image"] < 0.9).all()
