"""Tests of the NCE experiment runners (Tran et al. 2019) at a tiny scale.

The runners train real (tiny) networks on a few hundred Glyphs images for one epoch, so the
whole module stays well under a minute; each test gets its own cache folder.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from transferlib.experiments import nce
from transferlib.scores import conditional_entropy

TINY = {"n_images": 500}


@pytest.fixture(scope="module")
def glyphs_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One rendered Glyphs set shared by the module (rendering is not what is tested)."""
    return str(tmp_path_factory.mktemp("glyphs"))


def _tiny(cache_dir, glyphs_cache: str) -> nce.NCEConfig:
    base = nce.nce_config("smoke", cache_dir=cache_dir, device="cpu")
    return dataclasses.replace(
        base,
        dataset_options={**TINY, "cache_dir": glyphs_cache},
        n_train=240,
        n_test=80,
        n_attributes=3,
        n_sources=2,
        n_theorem_sources=1,
        batch_size=64,
        train_sizes=(60, 240),
    )


@pytest.fixture
def cfg(tmp_path, glyphs_cache) -> nce.NCEConfig:
    """A tiny configuration with its own, empty cache (for tests of caching and resuming)."""
    return _tiny(tmp_path, glyphs_cache)


@pytest.fixture(scope="module")
def shared_cfg(tmp_path_factory, glyphs_cache) -> nce.NCEConfig:
    """A tiny configuration whose cache the content tests share (networks train once)."""
    return _tiny(tmp_path_factory.mktemp("nce"), glyphs_cache)


@pytest.fixture
def count_training(monkeypatch):
    """Count the networks actually trained (not loaded from the cache)."""
    calls = {"trained": 0, "loaded": 0}
    real = nce.train_cached

    def counting(*args, **kwargs):
        result = real(*args, **kwargs)
        calls["loaded" if result.from_cache else "trained"] += 1
        return result

    monkeypatch.setattr(nce, "train_cached", counting)
    return calls


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
    bound = nce.log_likelihood(probs, z) - conditional_entropy(y, z)
    assert nce.mixture_log_likelihood(probs, z, y) >= bound - 1e-12


def test_perfect_source_attains_minus_conditional_entropy():
    rng = np.random.default_rng(0)
    z = rng.integers(0, 4, size=200)
    y = rng.integers(0, 3, size=200)
    probs = np.eye(4)[z]
    assert nce.mixture_log_likelihood(probs, z, y) == pytest.approx(-conditional_entropy(y, z))


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
    labels = pd.DataFrame({"a1": [0, 1], "a2": [1, 0], "b1": [0, 1], "c1": [1, 1], "c2": [0, 1],
                           "c3": [1, 0]})
    ds = SimpleNamespace(
        attributes=list(labels.columns),
        attribute_kinds={"a1": "character", "a2": "character", "b1": "font",
                         "c1": "appearance", "c2": "appearance", "c3": "appearance"},
        labels=labels,
        metadata={"attribute_descriptions": {"c3": "tilted; VISUALLY HARD, balanced"}},
    )
    # c1 is constant (no task); c3 is designed and comes first.
    assert nce.select_attributes(ds) == ["c3", "a1", "b1", "c2", "a2"]
    assert nce.select_attributes(ds, 2) == ["c3", "a1"]
    assert nce.visual_difficulty(ds) == {"c3": "hard"}


def test_nce_config_rejects_bad_parameters():
    with pytest.raises(ValueError, match="scale"):
        nce.nce_config("huge")
    with pytest.raises(ValueError, match="data_root"):
        nce.nce_config("smoke", dataset="celeba")


# ------------------------------------------------------------------------------------------
# Runners (tiny networks)
# ------------------------------------------------------------------------------------------


def test_attribute_transfer_table_and_resume(cfg, count_training, monkeypatch):
    table = nce.run_attribute_transfer(cfg, progress=False)
    attributes = nce.select_attributes(nce.nce_dataset(cfg), cfg.n_attributes)
    assert len(table) == cfg.n_sources * (len(attributes) - 1)
    assert {"source", "target", "conditional_entropy", "test_error", "target_entropy"} <= set(table)
    assert not (table["source"] == table["target"]).any()
    assert table["test_error"].between(0, 1).all()
    assert (table["conditional_entropy"] <= table["target_entropy"] + 1e-12).all()
    assert count_training["trained"] == cfg.n_sources

    def must_not_train(*args, **kwargs):
        raise AssertionError("a finished sweep must be read from the result store")

    monkeypatch.setattr(nce, "train_cached", must_not_train)
    again = nce.run_attribute_transfer(cfg, progress=False)
    pd.testing.assert_frame_equal(table, again)


def test_interrupted_sweep_resumes_where_it_stopped(cfg, monkeypatch):
    real = nce.train_cached
    calls: list[str] = []

    def dies_on_second_source(model_name, train_data, *args, **kwargs):
        calls.append(train_data.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(model_name, train_data, *args, **kwargs)

    monkeypatch.setattr(nce, "train_cached", dies_on_second_source)
    with pytest.raises(KeyboardInterrupt):
        nce.run_attribute_transfer(cfg, progress=False)
    sources = nce.select_attributes(nce.nce_dataset(cfg), cfg.n_sources)
    assert len(nce._store(cfg, "attribute-transfer-linear_svm", ("source", "target"))) == 2

    calls.clear()
    monkeypatch.setattr(nce, "train_cached", lambda *a, **k: (calls.append(a[1].name), real(*a, **k))[1])
    table = nce.run_attribute_transfer(cfg, progress=False)
    assert calls == [f"{sources[1]}/train"]  # the first source's rows were kept
    assert sorted(table["source"].unique()) == sorted(sources)


def test_runs_are_deterministic(cfg, tmp_path):
    table = nce.run_attribute_transfer(cfg, progress=False)
    other = dataclasses.replace(cfg, cache_dir=str(tmp_path / "other"))
    pd.testing.assert_frame_equal(table, nce.run_attribute_transfer(other, progress=False))


def test_theorem_bound_holds_on_trained_networks(shared_cfg):
    cfg = shared_cfg
    table = nce.run_theorem_check(cfg, progress=False)
    assert len(table) == len(nce.select_attributes(nce.nce_dataset(cfg), cfg.n_attributes)) - 1
    assert table["bound_holds"].all()
    assert (table["mixture_log_likelihood"] >= table["bound"] - 1e-9).all()
    assert (table["transferred_log_likelihood"] >= table["head_log_likelihood"]).all()
    assert (table["source_log_likelihood"] <= 0).all()


def test_identity_transfer_and_hardness(shared_cfg, count_training):
    cfg = shared_cfg
    identity = nce.run_identity_transfer(cfg, progress=False)
    ds = nce.nce_dataset(cfg)
    attributes = nce.select_attributes(ds, cfg.n_attributes)
    assert sorted(identity["attribute"]) == sorted(attributes)
    assert identity["ce_given_identity"].is_monotonic_increasing
    # Character attributes are functions of the character: zero CE given identity.
    character = identity[identity["kind"] == "character"]
    assert len(character) > 0
    assert np.allclose(character["ce_given_identity"], 0.0)
    assert np.allclose(identity["transfer_gain"],
                       identity["transferred_accuracy"] - identity["dedicated_accuracy"])
    # The identity network and one per attribute, unless an earlier test trained them.
    assert count_training["trained"] + count_training["loaded"] == 1 + len(attributes)

    before = dict(count_training)
    hardness = nce.run_hardness(cfg, progress=False)
    assert count_training == before  # hardness reuses the dedicated networks' rows
    train_idx = nce.split_indices(cfg)[0]
    for _, row in hardness.iterrows():
        labels = ds.column(row["attribute"])[train_idx]
        assert row["hardness"] == pytest.approx(conditional_entropy(labels, np.zeros_like(labels)))
    fit = nce.correlation_summary(hardness, "hardness", "dedicated_error")
    assert list(fit.columns) == ["n", "r", "p_value", "slope", "intercept"]


def test_training_size_curve(shared_cfg):
    cfg = shared_cfg
    curve = nce.run_training_size_curve(cfg, progress=False)
    assert set(curve["method"]) == {"dedicated", "transferred"}
    assert sorted(curve["n"].unique()) == [60, 240]
    assert curve["attribute"].nunique() == 2
    assert curve["accuracy"].between(0, 1).all()
    table1 = nce.identity_table(nce.run_identity_transfer(cfg, progress=False), k=1)
    assert list(table1.index) == [
        "CE (decreasing transferability)", "Dedicated network", "Transfer (identity + head)"
    ]
    assert table1.shape[1] == 3
