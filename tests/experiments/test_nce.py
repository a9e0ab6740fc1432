"""The NCE chapter's runners (Tran et al. 2019) at a tiny scale, and its log-likelihoods.

The runners train real (tiny) networks on a few hundred Glyphs images for one epoch; each test
that checks caching or resuming gets its own cache folder.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from transferlib.config import RunParams
from transferlib.experiments import nce
from transferlib.experiments.presets import DataSpec
from transferlib.experiments.sweep import local_executor
from transferlib.scores import conditional_entropy

TINY = nce.PRESETS["smoke"].replace(
    {
        "data": DataSpec(n_images=660, pretrained_input_size=32),
        "n_train": 240,
        "n_test": 80,
        "n_attributes": 4,
        "dedicated": None,
        "n_sources": 2,
        "n_theorem_sources": 1,
        "n_seeds": 2,
        "training": {"batch_size": 64, "width": 8},
        "identity_training": {"width": 8},
        "train_sizes": (60, 240),
    }
)


def _run(cache_dir: Path | str) -> RunParams:
    return RunParams(scale="smoke", device="cpu", cache_dir=str(cache_dir))


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory) -> RunParams:
    """A run whose cache the content tests share (networks train once)."""
    return _run(tmp_path_factory.mktemp("nce"))


def _cached_files(run: RunParams, kind: str) -> set[str]:
    return {p.name for p in (Path(run.cache_dir) / kind).glob("*") if p.is_file()}


# ------------------------------------------------------------------------------------------
# Log-likelihoods (no training)
# ------------------------------------------------------------------------------------------


def test_log_likelihood_by_hand():
    probs = np.array([[0.5, 0.5], [0.2, 0.8], [0.9, 0.1]])
    expected = (np.log(0.5) + np.log(0.8) + np.log(0.9)) / 3
    assert nce.log_likelihood(probs, np.array([0, 1, 0])) == pytest.approx(expected)


def test_mixture_log_likelihood_by_hand():
    # z = (0, 0, 1, 1), y = (0, 1, 1, 1): P(y|z=0) = (1/2, 1/2), P(y|z=1) = (0, 1).
    probs = np.array([[1.0, 0.0], [0.5, 0.5], [0.25, 0.75], [0.0, 1.0]])
    z = np.array([0, 0, 1, 1])
    y = np.array([0, 1, 1, 1])
    p_y = np.array([0.5, 0.5 * 0.5 + 0.5 * 1.0, 0.25 * 0.5 + 0.75, 1.0])
    assert nce.mixture_log_likelihood(probs, z, y) == pytest.approx(np.mean(np.log(p_y)))


@pytest.mark.parametrize("seed", range(5))
def test_constructed_head_satisfies_theorem_for_any_network(seed):
    rng = np.random.default_rng(seed)
    n, kz, ky = 400, 6, 3
    z = rng.integers(0, kz, size=n)
    y = np.where(rng.random(n) < 0.6, z % ky, rng.integers(0, ky, size=n))
    logits = rng.normal(scale=3.0, size=(n, kz))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    bound = nce.log_likelihood(probs, z) - conditional_entropy(target_labels=y, source_labels=z)
    assert nce.mixture_log_likelihood(probs, z, y) >= bound - 1e-12


def test_perfect_source_attains_minus_conditional_entropy():
    rng = np.random.default_rng(0)
    z = rng.integers(0, 4, size=200)
    y = rng.integers(0, 3, size=200)
    probs = np.eye(4)[z]
    assert nce.mixture_log_likelihood(probs, z, y) == pytest.approx(-conditional_entropy(target_labels=y, source_labels=z))


def test_kbar_reads_any_function_of_the_source_label():
    rng = np.random.default_rng(0)
    z_train, z_test = rng.integers(0, 6, 300), rng.integers(0, 6, 100)
    union = np.isin(np.arange(6), [0, 3, 4]).astype(np.int64)  # an arbitrary union of classes
    perfect = np.eye(6)[z_test]
    assert nce.kbar_accuracy(z_train, union[z_train], perfect, union[z_test]) == 1.0
    # a source that knows nothing predicts the training majority for every image
    flat = np.full((100, 6), 1 / 6)
    y_train, y_test = rng.integers(0, 2, 300), rng.integers(0, 2, 100)
    majority = np.bincount(y_train).argmax()
    assert nce.kbar_accuracy(z_train, y_train, flat, y_test) == np.mean(y_test == majority)
    with pytest.raises(ValueError, match="entries"):
        nce.kbar_accuracy(z_train, y_train[:-1], flat, y_test)


def test_likelihood_input_validation():
    probs = np.full((3, 2), 0.5)
    with pytest.raises(ValueError, match="rows"):
        nce.log_likelihood(probs, np.array([0, 1]))
    with pytest.raises(TypeError, match="integer"):
        nce.log_likelihood(probs, np.array([0.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match="lie in"):
        nce.mixture_log_likelihood(probs, np.array([0, 1, 2]), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="entries"):
        nce.mixture_log_likelihood(probs, np.array([0, 1, 1]), np.array([0, 1]))
    with pytest.raises(ValueError, match="NaN"):
        nce.log_likelihood(np.array([[np.nan, 1.0]]), np.array([0]))


def test_select_attributes_puts_designed_first_then_alternates_kinds():
    labels = pd.DataFrame(
        {"a1": [0, 1], "a2": [1, 0], "b1": [0, 1], "c1": [1, 1], "c2": [0, 1], "c3": [1, 0]}
    )
    ds = SimpleNamespace(
        attributes=list(labels.columns),
        attribute_kinds={
            "a1": "character",
            "a2": "character",
            "b1": "font",
            "c1": "appearance",
            "c2": "appearance",
            "c3": "appearance",
        },
        labels=labels,
        metadata={"visual_difficulty": {"c3": "hard"}},
    )
    # c1 is constant (no task); c3 is designed and comes first.
    assert nce.select_attributes(ds) == ["c3", "a1", "b1", "c2", "a2"]
    assert nce.select_attributes(ds, 2) == ["c3", "a1"]
    assert nce.visual_difficulty(ds) == {"c3": "hard"}


# ------------------------------------------------------------------------------------------
# Runners (tiny networks)
# ------------------------------------------------------------------------------------------


def test_attribute_transfer_table_and_a_rerun_from_the_store(tmp_path):
    run = _run(tmp_path)
    table = nce.run_attribute_transfer(run, TINY, progress=False)
    attributes = nce.select_attributes(nce.nce_dataset(run, TINY), TINY.n_attributes)
    assert len(table) == TINY.n_sources * (len(attributes) - 1)
    assert not (table["source"] == table["target"]).any()
    # the attribute designed to be visually hard is a target, never a source
    assert "tilt_left" in attributes and "tilt_left" not in set(table["source"])
    assert table["test_error"].between(0, 1).all()
    assert (table["conditional_entropy"] <= table["target_entropy"] + 1e-12).all()
    assert len(_cached_files(run, "models")) == TINY.n_sources
    before = {kind: _cached_files(run, kind) for kind in ("models", "features")}
    again = nce.run_attribute_transfer(run, TINY, progress=False)
    pd.testing.assert_frame_equal(table, again)
    assert {kind: _cached_files(run, kind) for kind in before} == before


def test_interrupted_sweep_resumes_where_it_stopped(tmp_path, monkeypatch):
    run = _run(tmp_path)
    real = nce.train_network
    trained: list[str] = []

    def dies_on_second_source(run, dataset, spec, training, **kwargs):
        if len(trained) == 1:
            raise KeyboardInterrupt
        trained.append(spec.name)
        return real(run, dataset, spec, training, **kwargs)

    monkeypatch.setattr(nce, "train_network", dies_on_second_source)
    with pytest.raises(KeyboardInterrupt):
        nce.run_attribute_transfer(run, TINY, progress=False)
    monkeypatch.setattr(nce, "train_network", real)
    assert len(_cached_files(run, "models")) == 1
    table = nce.run_attribute_transfer(run, TINY, progress=False)
    assert len(_cached_files(run, "models")) == 2  # the first source was not trained again
    pd.testing.assert_frame_equal(
        table, nce.run_attribute_transfer(_run(tmp_path / "b"), TINY, progress=False)
    )


def test_theorem_bound_holds_on_trained_networks(shared_run):
    table = nce.run_theorem_check(shared_run, TINY, progress=False)
    assert len(table) == TINY.n_attributes - 1
    assert table["bound_holds"].all()
    assert np.allclose(
        table["bound"], table["source_log_likelihood"] - table["conditional_entropy"]
    )
    assert (table["mixture_log_likelihood"] >= table["bound"] - 1e-9).all()


def test_identity_transfer_and_hardness(shared_run):
    run = shared_run
    identity = nce.run_identity_transfer(run, TINY, progress=False)
    ds = nce.nce_dataset(run, TINY)
    attributes = nce.select_attributes(ds, TINY.n_attributes)
    assert sorted(identity["attribute"]) == sorted(attributes)
    assert identity["ce_given_identity"].is_monotonic_increasing
    # Character attributes are functions of the character: zero CE given identity.
    character = identity[identity["kind"] == "character"]
    assert len(character) > 0 and np.allclose(character["ce_given_identity"], 0.0)

    hardness = nce.run_hardness(run, TINY, progress=False)
    dedicated = hardness.set_index("attribute")["dedicated_accuracy"]
    assert np.allclose(
        identity.set_index("attribute")["dedicated_accuracy"], dedicated.loc[identity["attribute"]]
    )
    train_idx = nce.nce_tasks(run, TINY)["identity"].train_indices
    for _, row in hardness.iterrows():
        labels = ds.column(row["attribute"])[train_idx]
        assert row["hardness"] == pytest.approx(conditional_entropy(target_labels=labels, source_labels=np.zeros_like(labels)))
        counts = np.bincount(labels, minlength=2)
        assert row["majority_accuracy"] == pytest.approx(
            np.mean(
                ds.column(row["attribute"])[nce.nce_tasks(run, TINY)["identity"].test_indices]
                == counts.argmax()
            )
        )


def test_training_size_curve_reuses_the_full_size_network(shared_run):
    curve = nce.run_training_size_curve(shared_run, TINY, progress=False)
    assert set(curve["method"]) == {"dedicated", "transferred"}
    assert sorted(curve["n"].unique()) == [60, 240]
    assert curve["attribute"].nunique() == 2
    dedicated = nce.run_dedicated(shared_run, TINY, progress=False).set_index("attribute")
    full = curve[(curve["n"] == 240) & (curve["method"] == "dedicated")]
    for _, row in full.iterrows():
        assert row["accuracy"] == dedicated.loc[row["attribute"], "dedicated_accuracy"]
    small = curve[(curve["n"] == 60) & (curve["method"] == "dedicated")]
    assert (small["epochs"] == 4 * TINY.training.epochs).all()  # the same gradient steps


def test_seeds_replicate_whole_runs_and_table1_averages_within_seeds(shared_run):
    runs = nce.replicate_runs(shared_run, TINY)
    assert [r.seed for r in runs] == [0, 1] and runs[1].cache_dir == shared_run.cache_dir
    identity = nce.over_seeds(nce.run_identity_transfer, shared_run, TINY, progress=False)
    assert sorted(identity["seed"].unique()) == [0, 1]
    table1 = nce.identity_table(identity, k=1)
    assert list(table1["attribute"])[-1] == "Average (all)"
    assert len(table1) == 3  # the most and the least transferable, then the average
    average = table1.set_index("attribute").loc["Average (all)"]
    per_seed = identity.groupby("seed")["dedicated_accuracy"].mean()
    assert average["dedicated_accuracy"] == pytest.approx(per_seed.mean())
    assert average["dedicated_accuracy_sd"] == pytest.approx(per_seed.std(ddof=1))
    halves = nce.gain_by_half(identity)
    assert list(halves["seed"]) == [0, 1]
    assert np.allclose(halves["difference"], halves["low_ce_gain"] - halves["high_ce_gain"])


def test_trained_networks_lists_every_network_against_its_baseline(shared_run):
    networks = nce.trained_networks(shared_run, TINY, seeds=False)
    dedicated = nce.dedicated_attributes(shared_run, TINY)
    assert list(networks["network"]) == ["identity", *dedicated]
    assert networks["kind"].iloc[0] == "identity"
    assert np.allclose(
        networks["margin"], networks["test_accuracy"] - networks["majority_accuracy"]
    )
    summary = nce.network_summary(networks).set_index("role")
    for role, group in networks.groupby("role"):
        expected = f"{int(group['beats_baseline'].sum())} of {len(group)}"
        assert summary.loc[role, "beat baseline"] == expected


def test_claims_have_a_verdict_from_the_rules(shared_run):
    claims = nce.nce_claims(shared_run, TINY)
    assert list(claims.columns) == ["claim", "paper", "ours", "verdict", "rule"]
    assert set(claims["verdict"]) <= {"holds", "partly", "not reproduced"}
    assert claims["rule"].str.len().min() > 10
    assert claims.iloc[0]["verdict"] == "holds"  # Theorem 1 with k-bar is arithmetic


def test_spread_and_largest_residuals():
    table = pd.DataFrame(
        {"attribute": list("aabb"), "seed": [0, 1, 0, 1], "x": [1.0, 3.0, 2.0, 2.0]}
    )
    out = nce.spread(table, "attribute", ["x"]).set_index("attribute")
    assert out.loc["a", "x"] == 2.0 and out.loc["a", "x_sd"] == pytest.approx(np.sqrt(2))
    assert out.loc["b", "x_sd"] == 0.0 and (out["n_seeds"] == 2).all()
    line = pd.DataFrame({"attribute": list("abcde"), "x": [0, 1, 2, 3, 4.0]})
    line["y"] = 2 * line["x"] + np.array([0, 0, 3.0, 0, 0])
    assert nce.largest_residuals(line, "x", "y", k=1)["attribute"].tolist() == ["c"]


@pytest.mark.slow
def test_a_process_pool_and_a_dask_cluster_give_the_sequential_table(tmp_path, shared_run):
    sequential = nce.run_dedicated(shared_run, TINY, progress=False)
    # One torch thread in every worker, as in this process: the same arithmetic, the same table.
    with local_executor(shared_run, workers=2) as pool:
        pooled = nce.run_dedicated(_run(tmp_path / "pool"), TINY, progress=False, executor=pool)
    columns = [c for c in sequential if c != "seconds"]
    pd.testing.assert_frame_equal(sequential[columns], pooled[columns])

    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.run(torch.set_num_threads, 1)
        clustered = nce.run_dedicated(
            _run(tmp_path / "dask"), TINY, progress=False, executor=client.get_executor()
        )
    pd.testing.assert_frame_equal(sequential[columns], clustered[columns])


@pytest.mark.slow
def test_local_executor_runs_single_threaded_workers_on_a_cpu(tmp_path):
    run = _run(tmp_path)
    assert local_executor(run, workers=1) is None  # one core: compute in this process
    with local_executor(run, workers=2) as pool:
        assert pool.submit(torch.get_num_threads).result() == 1
