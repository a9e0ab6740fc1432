"""The H-score chapter's runners (Bao et al. 2019) at a tiny scale, and its helpers.

One module-scoped run computes every runner once on a few hundred images (tiny EfficientNet
input, one-epoch encoders); the content tests share it. Helpers are tested on hand-made inputs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from transferlib.config import RunParams
from transferlib.data.glyph_scenes import TASK_GROUPS
from transferlib.experiments import hscore
from transferlib.experiments.presets import DataSpec
from transferlib.experiments.protocols import task_codes
from transferlib.scores import h_score, hgr_maximal_correlation

TINY = hscore.PRESETS["smoke"].replace(
    {
        "data": DataSpec(n_images=660, pretrained_input_size=32),
        "layers": ("stage3", "stage5"),
        "n_classes": 10,
        "train_per_class": 5,
        "ks": (3,),
        "draws": 2,
        "target_layer": "stage3",
        "hgr_steps": 10,
        "world": {"n_images": 200, "code_channels": 1},  # 64-d codes, fewer than images
        "curriculum_labels": 30,
        "attributes": ("dark_background", "large", "uppercase"),
        "attribute_train": 200,
        "attribute_test": 100,
        "small_data_per_class": (2,),
    }
)


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> RunParams:
    return RunParams(scale="smoke", device="cpu", cache_dir=str(tmp_path_factory.mktemp("hscore")))


@pytest.fixture(scope="module")
def tables(run) -> dict[str, pd.DataFrame]:
    kwargs = {"progress": False}
    return {
        "layers": hscore.run_layer_transfer(run, TINY, **kwargs),
        "targets": hscore.run_target_transfer(run, TINY, **kwargs),
        "small": hscore.run_small_data(run, TINY, **kwargs),
        "hgr": hscore.run_hgr_check(run, TINY, **kwargs),
        "encoders": hscore.run_encoders(run, TINY, **kwargs),
        "transfer": hscore.run_task_transfer(run, TINY, **kwargs),
        "pairs": hscore.run_pair_transfer(run, TINY, **kwargs),
        "curriculum": hscore.run_curriculum(run, TINY, **kwargs),
        "attributes": hscore.run_attribute_transfer(run, TINY, **kwargs),
    }


# ------------------------------------------------------------------------------------------
# Runners
# ------------------------------------------------------------------------------------------


def test_layer_rows_are_h_scores_of_the_cached_features(run, tables):
    layers = tables["layers"]
    assert list(layers["layer"]) == list(TINY.layers)
    spec = hscore.layer_task(run, TINY)
    features = hscore.layer_features(run, TINY, "train")
    labels = task_codes(hscore.layer_dataset(run, TINY), spec, spec.train_indices, "train")
    for row in layers.itertuples(index=False):
        assert row.h_score == pytest.approx(h_score(features[row.layer], labels), rel=1e-9)
        assert row.transferability == pytest.approx(row.h_score / (row.num_classes - 1))
        assert 0 <= row.h_score <= row.num_classes - 1 + 1e-9
        assert 0 <= row.train_accuracy <= 1 and row.train_log_loss >= 0
    assert (layers["n_train"] == TINY.n_classes * TINY.train_per_class).all()


def test_target_tasks_reuse_the_layer_task_rows(run, tables):
    base = hscore.layer_task(run, TINY)
    specs = hscore.target_tasks(run, TINY)
    assert [s.num_classes for s in specs] == [3, 3]
    for spec in specs:
        assert set(spec.classes) <= set(base.classes)
        assert np.isin(spec.train_indices, base.train_indices).all()
        assert spec.train_indices.size == 3 * TINY.train_per_class
    targets = tables["targets"]
    assert list(targets["task"]) == [s.name for s in specs]
    assert (targets["transferability"] <= 1 + 1e-9).all()


def test_small_data_rows_cover_every_layer_and_size(tables):
    small = tables["small"]
    assert set(small["per_class"]) == {2} and list(small["layer"]) == list(TINY.layers)
    assert (small["n_train"] == 2 * TINY.n_classes).all()
    assert (small["h_score"] <= small["max_h_score"] + 1e-9).all()


def test_soft_hgr_estimate_approaches_the_closed_form_from_below(tables):
    hgr = tables["hgr"]
    assert (hgr["closed_form"] == TINY.hgr_classes - 1).all()
    assert (hgr["train_estimate"] <= hgr["closed_form"] + 1e-6).all()
    assert hgr["train_estimate"].iloc[-1] > hgr["train_estimate"].iloc[0]


def test_encoder_table_has_every_task_and_its_baseline(tables):
    encoders = tables["encoders"]
    assert list(encoders["task"]) == list(TASK_GROUPS)
    dense = encoders[encoders["group"] != "classification"]
    assert (dense["trivial"] > 0).all()
    assert (
        dense["beats_baseline"]
        == (dense["value"] <= hscore.DENSE_BASELINE_RATIO * dense["trivial"])
    ).all()


def test_task_transfer_scores_every_ordered_pair(run, tables):
    transfer = tables["transfer"]
    assert len(transfer) == len(TASK_GROUPS) * (len(TASK_GROUPS) - 1)
    assert not (transfer["source"] == transfer["target"]).any()
    assert transfer["transferability"].between(0, 1 + 1e-9).all()
    assert transfer["transferability"].max() < 1  # 64-d codes do not fit 150 images
    # The per-pixel mean is the mean of h_score over the pixels' palette labels.
    row = transfer[(transfer["source"] == "segment") & (transfer["target"] == "depth")].iloc[0]
    pixels = hscore.pixel_h_scores(run, TINY, "depth", ["segment"])
    assert row["h_score"] == pytest.approx(pixels.mean(), rel=1e-9)
    codes = hscore.world_codes(run, TINY, "segment", "train")
    labels = hscore._task_labels(run, TINY, "depth")
    column = int(np.argmax(labels.std(axis=0)))
    assert pixels.ravel()[column] == pytest.approx(h_score(codes, labels[:, column]), rel=1e-8)


def test_pairs_contain_their_sources(tables):
    pairs, transfer = tables["pairs"], tables["transfer"]
    n = len(TASK_GROUPS)
    assert len(pairs) == n * (n - 1) // 2 * (n - 2)
    # Concatenating never loses what either source had: H(pair) >= H(each source).
    merged = pairs.merge(
        transfer, left_on=["source_a", "target"], right_on=["source", "target"], suffixes=("", "_a")
    )
    assert (merged["h_score"] >= merged["h_score_a"] - 1e-9).all()
    assert (pairs["gain"] >= -1e-9).all()


def test_curriculum_trains_each_child_three_ways(tables):
    curriculum, transfer = tables["curriculum"], tables["transfer"]
    tree = hscore.spanning_tree(transfer)
    assert len(curriculum) == 3 * len(tree)
    assert set(curriculum["init"]) == {"parent", "scratch", "worst"}
    parents = dict(zip(tree["child"], tree["parent"]))
    started = curriculum[curriculum["init"] == "parent"]
    assert all(parents[t] == s for t, s in zip(started["task"], started["start"]))


def test_attribute_transfer_is_normalised_h_score(tables):
    attributes = tables["attributes"]
    assert len(attributes) == 3 * 2
    assert attributes["transferability"].between(0, 1).all()


def test_a_rerun_reads_every_row_from_the_stores(run, tables, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("recomputed a stored row")

    for name in ("_layer_row", "_source_rows", "_pair_rows", "_curriculum_rows"):
        monkeypatch.setattr(hscore, name, fail)
    pd.testing.assert_frame_equal(
        hscore.run_layer_transfer(run, TINY, progress=False), tables["layers"]
    )
    pd.testing.assert_frame_equal(
        hscore.run_pair_transfer(run, TINY, progress=False), tables["pairs"]
    )
    assert len(hscore.run_curriculum(run, TINY, progress=False)) == len(tables["curriculum"])


def test_the_world_refuses_other_datasets(tmp_path):
    other = RunParams(
        scale="smoke", dataset="cifar100", data_root=str(tmp_path), cache_dir=str(tmp_path)
    )
    with pytest.raises(ValueError, match="dataset='glyphs'"):
        hscore.scene_world(other, TINY)


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------


def test_palette_keeps_few_values_and_clusters_many():
    assert hscore.fit_palette(np.array([0.0, 0.5, 1.0, 0.5]), 16).tolist() == [0.0, 0.5, 1.0]
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(c, 0.01, 200) for c in (0.1, 0.4, 0.9)])
    centres = hscore.fit_palette(values, 3)
    np.testing.assert_allclose(centres, [0.1, 0.4, 0.9], atol=0.01)
    codes = hscore.palette_codes(np.array([0.0, 0.3, 0.6, 1.0]), centres)
    assert codes.tolist() == [0, 1, 1, 2]
    with pytest.raises(ValueError, match="n_colours"):
        hscore.fit_palette(values, 1)


def _table(scores: dict[tuple[str, str], float]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"source": s, "target": t, "transferability": v} for (s, t), v in scores.items()]
    )


def test_spanning_tree_uses_the_larger_direction_and_finds_the_hub():
    tasks = ["a", "b", "c", "d"]
    scores = {(s, t): 0.1 for s in tasks for t in tasks if s != t}
    scores.update({(s, "d"): 0.9 for s in "abc"})  # d is easy to predict from anything
    tree = hscore.spanning_tree(_table(scores))
    assert len(tree) == 3
    edges = {frozenset(e) for e in zip(tree["parent"], tree["child"])}
    assert edges == {frozenset({"a", "d"}), frozenset({"b", "d"}), frozenset({"c", "d"})}
    chain = {(s, t): 0.0 for s in tasks for t in tasks if s != t}
    chain.update({("a", "b"): 0.8, ("c", "b"): 0.7, ("d", "c"): 0.6})
    tree = hscore.spanning_tree(_table(chain), root="a")
    assert list(zip(tree["parent"], tree["child"])) == [("a", "b"), ("b", "c"), ("c", "d")]
    assert tree["depth"].tolist() == [1, 2, 3]


def test_ranking_agreement_of_identical_rankings():
    rows = []
    for target in ("object", "scene"):
        for rank, source in enumerate(s for s in TASK_GROUPS if s != target):
            rows.append(
                {
                    "source": source,
                    "target": target,
                    "h_score": 10.0 - rank,
                    "affinity_loss": 1.0 + rank,
                }
            )
    agreement = hscore.ranking_agreement(pd.DataFrame(rows))
    assert agreement["spearman"].tolist() == pytest.approx([1.0, 1.0])
    assert agreement["ndcg"].tolist() == pytest.approx([1.0, 1.0])
    assert (agreement["ndcg_random"] < 1).all()
    assert agreement["top1_match"].all() and agreement["top2_match"].all()
    ranks = hscore.ranking_matrix(pd.DataFrame(rows), "affinity_loss", higher_is_better=False)
    assert ranks.loc["object", "scene"] == 1 and np.isnan(ranks.loc["object", "object"])


def test_soft_hgr_is_at_most_half_the_squared_correlations_and_reaches_it():
    rng = np.random.default_rng(1)
    joint = rng.dirichlet(np.ones(12)).reshape(3, 4)
    pairs = rng.choice(12, size=5000, p=joint.ravel())
    y, x = np.divmod(pairs, 4)
    rho, f, g = hgr_maximal_correlation(x, y, k=2, return_functions=True)
    half = 0.5 * float((rho**2).sum())
    # The optimum: whitened HGR functions f and g scaled by the correlations.
    best = hscore.soft_hgr(torch.as_tensor(f[x]), torch.as_tensor(g[y] * rho))
    assert float(best) == pytest.approx(half, rel=1e-6)
    for scale in (0.5, 2.0):
        other = hscore.soft_hgr(torch.as_tensor(f[x]), torch.as_tensor(g[y] * rho * scale))
        assert float(other) < half
    random = hscore.soft_hgr(
        torch.randn(len(x), 2, dtype=torch.float64), torch.as_tensor(rng.normal(size=(3, 2))[y])
    )
    assert float(random) < half


def test_association_is_nan_for_constant_input():
    assert np.isnan(hscore.association([1, 2, 3], [1, 1, 1])[0])
    assert hscore.association([1, 2, 3, 4], [2, 4, 6, 9], "pearson")[0] > 0.9


def test_attribute_names_checks_the_dataset(run):
    ds = hscore.layer_dataset(run, TINY)
    assert hscore.attribute_names(ds, ["large"]) == ["large"]
    with pytest.raises(ValueError, match="no attribute"):
        hscore.attribute_names(ds, ["sparkly"])
    balanced = hscore.attribute_names(ds)
    assert set(balanced) <= set(ds.attributes) and len(balanced) > 10


def test_presets_share_one_code_path():
    smoke, book, full = (hscore.PRESETS[s] for s in ("smoke", "book", "full"))
    assert type(smoke) is type(book) is type(full)
    assert book.data.n_images > smoke.data.n_images and full.world.n_images > book.world.n_images
    assert set(book.layers) <= set(full.layers) and len(book.layers) >= 5
