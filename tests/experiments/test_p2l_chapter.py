"""The P2L chapter's predictor (on synthetic numbers) and runners (at a tiny scale).

The runner tests train real networks of width 8 on a few hundred 16-pixel glyphs for one epoch;
they share one cache folder, except the test of resuming, which gets its own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from transferlib.config import RunParams
from transferlib.experiments import p2l
from transferlib.experiments.presets import DataSpec
from transferlib.scores.p2l import divergence

TINY = p2l.PRESETS["smoke"].replace(
    {
        "data": DataSpec(n_images=1_320, pretrained_input_size=32),
        "sources": ("latin_upper", "digit", "bold", "general"),
        "training_targets": ("latin_upper", "bold"),
        "evaluation_targets": ("upper_case", "italic"),
        "source_training": {"epochs": 1},
        "fine_tuning": {"epochs": 1},
        "reference_training": {"epochs": 1},
        "source_steps": 1,
        "max_source_epochs": 1,
        "n_user_tasks": 2,
        "user_images": 24,
        "user_learning_rates": (0.05,),
    }
)


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def _run(cache_dir: Path | str) -> RunParams:
    return RunParams(scale="smoke", device="cpu", cache_dir=str(cache_dir))


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory) -> RunParams:
    return _run(tmp_path_factory.mktemp("p2l"))


# ------------------------------------------------------------------------------------------
# The predictor, on numbers
# ------------------------------------------------------------------------------------------


def test_reference_embedding_is_the_normalised_mean_whatever_the_batching():
    rng = np.random.default_rng(0)
    features = rng.random((37, 5))
    inputs = np.arange(37)
    whole = p2l.reference_embedding(lambda rows: features[rows], inputs, batch_size=100)
    batched = p2l.reference_embedding(lambda rows: features[rows], inputs, batch_size=4)
    mean = features.mean(axis=0)
    np.testing.assert_allclose(whole, batched)
    np.testing.assert_allclose(whole, mean / mean.sum(), atol=1e-8)


def test_reference_embedding_rejects_bad_references():
    with pytest.raises(TypeError, match="callable"):
        p2l.reference_embedding("not a model", np.arange(3))
    with pytest.raises(ValueError, match="one feature row per input"):
        p2l.reference_embedding(lambda rows: np.ones((1, 3)), np.arange(5), batch_size=5)
    with pytest.raises(ValueError, match="empty"):
        p2l.reference_embedding(lambda rows: rows, np.arange(0))


def test_embedding_divergences_match_the_score_functions():
    rng = np.random.default_rng(1)
    sources = {f"s{i}": rng.dirichlet(np.ones(6)) for i in range(3)}
    targets = {"t": rng.dirichlet(np.ones(6))}
    table = p2l.embedding_divergences(sources, targets, ("kl", "cityblock"))
    assert list(table["source"]) == ["s0", "s1", "s2"]
    for _, row in table.iterrows():
        assert row["kl"] == pytest.approx(divergence(targets["t"], sources[row["source"]], "kl"))
    with pytest.raises(ValueError, match="unknown metric"):
        p2l.embedding_divergences(sources, targets, ("cosine",))


def test_rank_sources_prefers_large_and_close_sources_for_negative_k():
    sizes = {"big_far": 10_000, "small_close": 100, "big_close": 10_000, "small_far": 100}
    divs = {"big_far": 0.9, "small_close": 0.1, "big_close": 0.1, "small_far": 0.9}
    ranking = p2l.rank_sources(sizes, divs, k=-1.0)
    assert ranking["source"].iloc[0] == "big_close"
    assert ranking["source"].iloc[-1] == "small_far"
    assert list(ranking["rank"]) == [1, 2, 3, 4]
    # k = 0: size alone; k < 0 large: divergence alone
    assert set(p2l.rank_sources(sizes, divs, 0.0)["source"][:2]) == {"big_far", "big_close"}
    assert set(p2l.rank_sources(sizes, divs, -50.0)["source"][:2]) == {"small_close", "big_close"}
    with pytest.raises(ValueError, match="same sources"):
        p2l.rank_sources(sizes, {"big_far": 0.1}, -1.0)


def test_ranking_is_invariant_to_affine_changes_of_the_divergence():
    """Proposition prop-p2l-ranking (i): positive scaling and shifts of D keep the order."""
    rng = np.random.default_rng(2)
    sizes = dict(zip("abcdef", rng.integers(50, 5000, 6).tolist()))
    divs = dict(zip("abcdef", rng.random(6).tolist()))
    order = list(p2l.rank_sources(sizes, divs, -0.7)["source"])
    scaled = {s: 3.0 * d + 5.0 for s, d in divs.items()}
    assert list(p2l.rank_sources(sizes, scaled, -0.7)["source"]) == order


def test_picks_to_best():
    accuracy = {"a": 0.5, "b": 0.7, "c": 0.6}
    assert p2l.picks_to_best(["b", "a", "c"], accuracy) == 1
    assert p2l.picks_to_best(["a", "c", "b"], accuracy) == 3
    with pytest.raises(ValueError):
        p2l.picks_to_best(["a"], accuracy)


def _synthetic(k_true: float, n_targets: int = 6, n_sources: int = 7, seed: int = 0):
    """Ground truth where the improvement is exactly E(k_true) plus nothing else."""
    from transferlib.scores.p2l import embedding_divergence

    rng = np.random.default_rng(seed)
    sizes = rng.integers(50, 5000, n_sources).astype(float)
    rows, drows = [], []
    for t in range(n_targets):
        d = rng.random(n_sources)
        improvement = embedding_divergence(sizes, d, k_true) / 10
        group = "training" if t < n_targets // 2 else "evaluation"
        for j in range(n_sources):
            rows.append(
                {
                    "source": f"s{j}",
                    "target": f"t{t}",
                    "group": group,
                    "accuracy": 0.5 + improvement[j],
                    "reference_accuracy": 0.5,
                    "improvement": improvement[j],
                    "size": sizes[j],
                }
            )
            drows.append(
                {
                    "source": f"s{j}",
                    "target": f"t{t}",
                    "group": group,
                    "size": sizes[j],
                    **{m: d[j] for m in p2l.METRICS},
                }
            )
    return pd.DataFrame(rows), pd.DataFrame(drows)


def test_fit_predictor_recovers_the_sign_and_the_evaluation_finds_the_best():
    truth, divergences = _synthetic(k_true=-1.5)
    preset = TINY.replace({"metrics": ("kl", "euclidean"), "top": 4, "standard_source": "s0"})
    fit = p2l.fit_predictor(truth, divergences, preset)
    assert fit.k < 0
    assert fit.summary()["chosen"].sum() == 1
    evaluation = p2l.evaluate_predictor(truth, divergences, fit, preset)
    assert len(evaluation) == 3
    assert evaluation["picked_best"].all()
    assert (evaluation["picks_p2l"] == 1).all()
    assert (evaluation["rho_p2l"] > 0.9).all()
    assert (evaluation["B3"] <= evaluation["best"]).all()
    gains = p2l.relative_gains(evaluation)
    assert (gains[["B1", "B2", "B3", "B4", "B5"]] >= -1e-12).all().all()


def test_fit_predictor_needs_a_training_group():
    truth, divergences = _synthetic(k_true=-1.0)
    with pytest.raises(ValueError, match="training"):
        p2l.fit_predictor(truth.assign(group="evaluation"), divergences, TINY)


def test_presets_meet_the_chapter_requirements():
    book, full = p2l.PRESETS["book"], p2l.PRESETS["full"]
    n_book_sources = len(book.sources) + book.digits_source
    assert n_book_sources >= 8 and len(book.evaluation_targets) >= 10
    assert len(full.sources) + full.digits_source >= 17
    assert len(full.evaluation_targets) >= 14 and len(full.training_targets) == 9
    for preset in p2l.PRESETS.values():
        assert not set(preset.evaluation_targets) & set(preset.sources)


@pytest.mark.slow
def test_book_pool_spans_one_and_a_half_orders_of_magnitude(tmp_path):
    """The size ladder, not a bigger render: checked on the book's own tasks (no training)."""
    run = RunParams(scale="book", device="cpu", cache_dir=str(tmp_path))
    sizes = [len(s.train_indices) for s in p2l.p2l_tasks(run, p2l.PRESETS["book"]).sources.values()]
    assert np.log10(max(sizes) / min(sizes)) >= 1.5


def test_bad_presets_fail_before_any_work(tmp_path):
    run = _run(tmp_path)
    with pytest.raises(ValueError, match="pool"):
        p2l.p2l_tasks(run, TINY.replace({"standard_source": "italic"}))
    with pytest.raises(ValueError, match="evaluation targets"):
        p2l.p2l_tasks(run, TINY.replace({"evaluation_targets": ("bold",)}))


# ------------------------------------------------------------------------------------------
# The runners, at a tiny scale
# ------------------------------------------------------------------------------------------


def test_tasks_never_share_images_between_sources_and_targets(shared_run):
    tasks = p2l.p2l_tasks(shared_run, TINY)
    source_rows = np.concatenate([s.train_indices for s in tasks.sources.values()])
    for spec in tasks.targets.values():
        assert not np.intersect1d(spec.train_indices, source_rows).size
        assert not np.intersect1d(spec.test_indices, source_rows).size
        assert not np.intersect1d(spec.train_indices, spec.test_indices).size
    assert set(tasks.merged.train_indices) == set(source_rows)


@pytest.mark.slow
def test_ground_truth_divergences_and_evaluation_end_to_end(shared_run):
    truth = p2l.run_ground_truth(shared_run, TINY, progress=False)
    tasks = p2l.p2l_tasks(shared_run, TINY)
    assert len(truth) == len(tasks.sources) * len(tasks.targets)
    np.testing.assert_allclose(
        truth["improvement"], truth["accuracy"] - truth["reference_accuracy"]
    )
    assert set(truth["group"]) == {"training", "evaluation"}
    divergences = p2l.run_divergences(shared_run, TINY)
    assert len(divergences) == len(truth)
    assert (divergences[list(TINY.metrics)] >= 0).all().all()
    fit = p2l.fit_predictor(truth, divergences, TINY)
    evaluation = p2l.evaluate_predictor(truth, divergences, fit, TINY)
    assert set(evaluation["target"]) == set(TINY.evaluation_targets)
    assert evaluation["P2L_source"].isin(list(tasks.sources)).all()
    assert (evaluation["B2_source"] == TINY.standard_source).all()


def test_merged_sources(shared_run):
    merged = p2l.run_merged_sources(shared_run, TINY, progress=False)
    assert len(merged) == TINY.n_user_tasks
    assert (
        (merged["merged_wins"] + merged["standard_wins"]) <= len(TINY.user_learning_rates)
    ).all()
    assert (merged["divergence"] >= 0).all()
    sources = p2l.run_sources(shared_run, TINY, merged=True, progress=False)
    assert "merged" in set(sources["source"])


def test_runners_resume_pair_by_pair(tmp_path):
    run = _run(tmp_path)
    first = p2l.run_ground_truth(run, TINY, progress=False)
    stores = list((tmp_path / "results" / "p2l").glob("ground-truth-*.csv"))
    assert len(stores) == 1
    lines = stores[0].read_text().splitlines()
    stores[0].write_text("\n".join(lines[:-2]) + "\n")  # lose the last two pairs
    models = {p.name for p in (tmp_path / "models").glob("*.pt")}
    again = p2l.run_ground_truth(run, TINY, progress=False)
    pd.testing.assert_frame_equal(first, again)
    assert {p.name for p in (tmp_path / "models").glob("*.pt")} == models  # loaded, not retrained


def test_every_figure_helper_draws_from_the_runners_tables():
    from matplotlib.figure import Figure

    from transferlib.plotting import p2l as plots

    truth, divergences = _synthetic(k_true=-1.0)
    preset = TINY.replace({"standard_source": "s0", "top": 3})
    fit = p2l.fit_predictor(truth, divergences, preset)
    evaluation = p2l.evaluate_predictor(truth, divergences, fit, preset)
    sizes = truth.groupby("source")["size"].first().reset_index()
    merged = pd.DataFrame(
        {"divergence": [0.1, 0.2, 0.3], "score": [-1, 0, 2], "classes": [2, 5, 30]}
    )
    images = {"a": np.zeros((3, 3, 8, 8), np.uint8), "b": np.full((2, 1, 8, 8), 255, np.uint8)}
    figures = [
        plots.plot_source_sizes(sizes),
        plots.plot_domain_samples(images),
        plots.plot_size_similarity(truth[truth["group"] == "training"], divergences, "kl"),
        plots.plot_k_curves(fit.curves(), {m: f.k for m, f in fit.fits.items()}, 3),
        plots.plot_picks_to_best(evaluation),
        plots.plot_merged_sources(merged, 3),
        plots.plot_toy_ranking(
            [10, 100, 1000], [0.3, 0.2, 0.1], ["x", "y", "z"], np.linspace(-2, 1, 7)
        ),
        plots.plot_pipeline(),
    ]
    assert all(isinstance(f, Figure) and f.axes for f in figures)
    assert plots.domain_kind("latin_upper") == "script"
    assert plots.domain_kind("digits") == "other dataset"
    with pytest.raises(ValueError):
        plots.plot_domain_samples({})


def test_plateau_centre_takes_the_middle_of_the_best_values():
    from transferlib.scores.p2l import KFit

    grid = np.linspace(-4, 2, 7)  # -4 -3 -2 -1 0 1 2
    fit = KFit(
        k=-4.0, grid=grid, mean_spearman=np.array([0.8, 0.8, 0.8, 0.8, 0.5, 0.2, 0.2]), top=3
    )
    assert p2l.plateau_centre(fit) in (-3.0, -2.0)
    single = KFit(k=1.0, grid=grid, mean_spearman=np.array([0, 0, 0, 0, 0, 1.0, 0]), top=3)
    assert p2l.plateau_centre(single) == 1.0
