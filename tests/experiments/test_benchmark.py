"""The benchmark chapter's measures (on hand-computed cases) and its runner (on a synthetic unit).

The chapters' own sweeps are read by the benchmark pages, which ``tests/test_notebooks.py``
executes at the smoke scale; here the score runner is driven by a synthetic unit, so nothing is
trained.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import weightedtau

from transferlib.config import RunParams
from transferlib.experiments import benchmark
from transferlib.experiments.benchmark import (
    BenchmarkPreset,
    ScoreInputs,
    Sweep,
    bootstrap_interval,
    score_measures,
    score_summary,
    stratified_rows,
    winners,
)

PRESET = BenchmarkPreset(n_boot=200)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_vectorised_weighted_tau_equals_scipy_with_ties_and_duplicates() -> None:
    generator = np.random.default_rng(0)
    x = generator.integers(0, 5, size=(40, 15)).astype(float)  # ties in x
    y = generator.normal(size=(40, 15))
    picks = generator.integers(0, 15, size=(40, 15))  # bootstrap duplicates: ties in both
    x, y = np.take_along_axis(x, picks, 1), np.take_along_axis(y, picks, 1)
    expected = [weightedtau(a, b).statistic for a, b in zip(x, y)]
    np.testing.assert_allclose(benchmark._weighted_tau_rows(x, y, chunk=16), expected, atol=1e-12)


def test_bootstrap_interval_is_a_percentile_interval() -> None:
    assert bootstrap_interval(np.arange(101.0), 0.9) == pytest.approx((5.0, 95.0))
    low, high = bootstrap_interval(np.r_[np.full(60, np.nan), np.arange(40.0)], 0.9)
    assert np.isnan(low) and np.isnan(high)  # most resamples undefined: no interval


def test_stratified_rows_keep_every_class_and_its_share() -> None:
    labels = np.repeat([0, 1, 2], [900, 90, 3])
    rows = stratified_rows(labels, 100, np.random.default_rng(1))
    counts = np.bincount(labels[rows])
    assert rows.size == 100 and np.all(np.diff(rows) > 0)
    assert counts[2] >= 2 and counts[1] >= 9 and counts[0] >= 89
    np.testing.assert_array_equal(stratified_rows(labels[:50], 100, None), np.arange(50))


def _sweep(kind: str, scores: dict[str, np.ndarray], truth: np.ndarray, groups: int) -> tuple:
    n = truth.size
    group = np.repeat([f"t{g}" for g in range(groups)], n // groups)
    items = [f"i{i}" for i in range(n)]
    frame = pd.DataFrame({"group": group, "candidate": items, "truth": truth, "item": items})
    table = pd.DataFrame({"item": items, "n_train": 50})
    for name, values in scores.items():
        table[name] = values
        table[f"{name}_seconds"] = 0.01
        table[f"{name}_error"] = [None if np.isfinite(v) else "needs probs" for v in values]
    return Sweep(f"{kind} sweep", "synthetic", kind, "u", "accuracy", frame), {"u": table}


def test_measures_of_a_perfect_a_reversed_and_an_inapplicable_score() -> None:
    truth = np.random.default_rng(2).uniform(0.2, 0.9, 60)
    sweep, scores = _sweep(
        "selection",
        {"perfect": truth * 3, "reversed": -truth, "absent": np.full(60, np.nan)},
        truth,
        groups=12,
    )
    run = RunParams(seed=0)
    measures = score_measures(run, PRESET, [sweep], scores, ["perfect", "reversed", "absent"])
    perfect, backwards, absent = (measures.iloc[i] for i in range(3))
    assert perfect["tau_w"] == pytest.approx(1) and perfect["pearson"] == pytest.approx(1)
    assert perfect["regret"] == 0 and perfect["relative_accuracy"] == 1
    assert backwards["tau_w"] == pytest.approx(-1) and backwards["regret"] > 0
    assert backwards["tau_w_low"] <= backwards["tau_w"] <= backwards["tau_w_high"]
    assert perfect["n_groups"] == 12 and perfect["n_items"] == 60
    assert np.isnan(absent["tau_w"]) and absent["reason"] == "needs probs"


def test_measures_default_to_the_presets_scores() -> None:
    # the book preset leaves N-LEEP out: its tables have no N-LEEP column to measure
    truth = np.random.default_rng(5).uniform(0.2, 0.9, 30)
    sweep, scores = _sweep("selection", {"leep": truth, "nce": -truth}, truth, groups=6)
    preset = PRESET.replace({"scores": ("leep", "nce")})
    measures = score_measures(RunParams(seed=0), preset, [sweep], scores)
    assert list(measures["score"]) == ["leep", "nce"]


def test_recommended_scores_skip_those_that_saturate_on_a_sweep() -> None:
    truth = np.random.default_rng(6).uniform(0.2, 0.9, 30)
    noisy = truth + np.random.default_rng(7).normal(0, 0.2, 30)
    sweep, scores = _sweep(
        "selection",
        {"h_score": truth, "leep": noisy, "nce": -truth, "logme": np.full(30, 4.0)},
        truth,
        groups=6,
    )
    preset = PRESET.replace({"scores": ("h_score", "leep", "nce", "logme")})
    run = RunParams(seed=0)
    measures = score_measures(run, preset, [sweep], scores)
    summary = score_summary(measures, winners(run, preset, [sweep], scores, measures))
    assert list(summary["score"])[:2] == ["h_score", "leep"]  # logme is constant: no rank
    assert benchmark.never_saturated(measures, summary, k=2) == ["h_score", "leep"]
    # a second sweep where the H-score is constant (saturated) drops it from the advice
    saturated, more = _sweep(
        "selection", {"h_score": np.full(30, 2.0), "leep": truth, "nce": truth}, truth, 6
    )
    saturated = dataclasses.replace(saturated, name="saturated sweep", unit="v")
    both = score_measures(
        run,
        preset.replace({"scores": ("h_score", "leep", "nce")}),
        [sweep, saturated],
        {**scores, "v": more["u"]},
    )
    summary = score_summary(
        both, winners(run, preset, [sweep, saturated], {**scores, "v": more["u"]}, both)
    )
    assert benchmark.never_saturated(both, summary, k=2) == ["leep", "nce"]


def test_relative_accuracy_is_undefined_where_a_truth_is_not_positive() -> None:
    truth = np.tile([0.0, 0.5, 0.9], 4)  # a candidate with zero accuracy in every group
    sweep, scores = _sweep("selection", {"perfect": truth}, truth, groups=4)
    (row,) = score_measures(RunParams(seed=0), PRESET, [sweep], scores, ["perfect"]).itertuples()
    assert np.isnan(row.relative_accuracy) and row.regret == 0


def test_tasks_sweeps_have_intervals_and_no_pick() -> None:
    generator = np.random.default_rng(3)
    truth = generator.uniform(0.2, 0.9, 40)
    noisy = truth + generator.normal(0, 0.1, 40)
    sweep, scores = _sweep("tasks", {"noisy": noisy}, truth, groups=1)
    (row,) = score_measures(RunParams(seed=0), PRESET, [sweep], scores, ["noisy"]).itertuples()
    assert row.tau_w_low < row.tau_w < row.tau_w_high
    assert row.pearson_low < row.pearson < row.pearson_high
    assert np.isnan(row.regret) and np.isnan(row.relative_accuracy)


def test_a_winner_needs_an_interval_of_the_difference_above_zero() -> None:
    generator = np.random.default_rng(4)
    truth = generator.uniform(0.2, 0.9, 80)
    good, bad = truth + generator.normal(0, 0.02, 80), generator.normal(size=80)
    close = good + generator.normal(0, 0.02, 80)
    columns = {"good": good, "bad": bad, "twin": 2 * good, "close": close}
    sweep, scores = _sweep("tasks", columns, truth, 1)
    run = RunParams(seed=0)

    def winner(names: list[str]) -> pd.Series:
        measures = score_measures(run, PRESET, [sweep], scores, names)
        return winners(run, PRESET, [sweep], scores, measures).iloc[0]

    assert winner(["good", "bad"])["winner"] == "good"
    tied = winner(["good", "twin", "bad"])  # the same order: best together, against "bad"
    assert tied["winner"] == "good = twin" and tied["runner_up"] == "bad"
    assert winner(["good", "close"])["winner"] == "none"


def test_run_scores_computes_every_score_records_why_one_is_missing_and_resumes(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generator = np.random.default_rng(5)
    labels = np.repeat([0, 1, 2], 20)
    features = generator.normal(size=(60, 6)) + labels[:, None]
    calls = []

    def inputs(run, unit, item):
        calls.append(item)
        return ScoreInputs(labels, features=features)

    monkeypatch.setattr(benchmark, "unit_items", lambda run, unit, max_tasks=None: ["a", "b"])
    monkeypatch.setattr(benchmark, "score_inputs", inputs)
    run = RunParams(scale="smoke", seed=0, cache_dir=str(tmp_path))
    table = benchmark.run_scores(
        run, "hscore/targets", ["h_score", "leep", "logme"], max_train=30, progress=False
    )
    assert list(table["item"]) == ["a", "b"] and (table["n_train"] == 30).all()
    assert (table["n_available"] == 60).all()
    assert np.isfinite(table[["h_score", "logme", "h_score_seconds"]].to_numpy()).all()
    assert table["leep"].isna().all() and table["leep_error"].str.contains("no class").all()
    benchmark.run_scores(
        run, "hscore/targets", ["h_score", "leep", "logme"], max_train=30, progress=False
    )
    assert calls == ["a", "b"]  # the second run reads the store


def test_bad_presets_and_units_are_refused_before_any_work() -> None:
    with pytest.raises(ValueError, match="unknown chapter"):
        BenchmarkPreset(chapters=("nce", "taskonomy"))
    with pytest.raises(ValueError, match="unknown LEEP setting"):
        BenchmarkPreset(leep_settings=("huge",))
    with pytest.raises(ValueError, match="n_boot"):
        BenchmarkPreset(n_boot=2)
    with pytest.raises(ValueError, match="unknown score"):
        benchmark.run_scores(RunParams(), "p2l/pairs", ["entropy"])
    with pytest.raises(ValueError, match="unit"):
        benchmark.run_scores(RunParams(), "imagenet/models")


def test_presets_choose_registered_scores_and_default_to_all() -> None:
    from transferlib.experiments.benchmark import PRESETS, BenchmarkPreset
    from transferlib.scores import SCORES

    assert PRESETS["full"].score_names == tuple(SCORES)
    assert "nleep" not in PRESETS["book"].score_names
    with pytest.raises(ValueError, match="registered"):
        BenchmarkPreset(scores=("nleep", "bogus"))
    with pytest.raises(ValueError, match="registered"):
        BenchmarkPreset(scores=())
