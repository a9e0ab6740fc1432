"""P2L: embeddings, divergences against closed forms, E ranking and the choice of k."""

import numpy as np
import pytest
from scipy.spatial import distance

from transferlib.scores.p2l import (
    METRICS,
    dataset_embedding,
    divergence,
    embedding_divergence,
    fit_k,
)

P = np.array([0.5, 0.5])
Q = np.array([0.25, 0.75])


def test_dataset_embedding_is_smoothed_normalised_mean():
    features = np.array([[1.0, 0.0, 3.0], [3.0, 0.0, 1.0]])
    np.testing.assert_allclose(dataset_embedding(features, eps=0.0), [0.5, 0.0, 0.5])
    smoothed = dataset_embedding(features, eps=0.1)
    np.testing.assert_allclose(smoothed, np.array([0.6, 0.1, 0.6]) / 1.3)
    assert smoothed.sum() == pytest.approx(1.0)


def test_dataset_embedding_rejects_negative_and_zero_features():
    with pytest.raises(ValueError, match="non-negative"):
        dataset_embedding([[1.0, -1.0]])
    with pytest.raises(ValueError, match="all zero"):
        dataset_embedding(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="eps"):
        dataset_embedding([[1.0, 1.0]], eps=-1)


def test_closed_forms():
    assert divergence(P, Q, "kl") == pytest.approx(0.5 * np.log(2) + 0.5 * np.log(2 / 3))
    m = (P + Q) / 2
    js = 0.5 * np.sum(P * np.log(P / m)) + 0.5 * np.sum(Q * np.log(Q / m))
    assert divergence(P, Q, "jsd") == pytest.approx(np.sqrt(js))
    assert divergence(P, Q, "jsd") == pytest.approx(distance.jensenshannon(P, Q))
    assert divergence(P, Q, "chi2") == pytest.approx(0.5 * (0.25**2 / 0.75 + 0.25**2 / 1.25))
    assert divergence(P, Q, "euclidean") == pytest.approx(np.sqrt(2) * 0.25)
    assert divergence(P, Q, "cityblock") == pytest.approx(0.5)


@pytest.mark.parametrize("metric", METRICS)
def test_vectorised_rows_and_identity(metric):
    rng = np.random.default_rng(0)
    p = dataset_embedding(rng.random((20, 7)))
    q = np.stack([dataset_embedding(rng.random((20, 7))) for _ in range(4)])
    rows = divergence(p, q, metric)
    assert rows.shape == (4,)
    np.testing.assert_allclose(rows, [divergence(p, row, metric) for row in q])
    assert divergence(p, p, metric) == pytest.approx(0.0, abs=1e-12)
    assert np.all(rows > 0)


def test_divergence_bad_inputs():
    with pytest.raises(ValueError, match="metric"):
        divergence(P, Q, "cosine")
    with pytest.raises(ValueError, match="zeros where p > 0"):
        divergence(P, np.array([1.0, 0.0]), "kl")
    with pytest.raises(ValueError, match="sum to 1"):
        divergence(P, np.array([0.5, 0.6]), "jsd")
    with pytest.raises(ValueError, match="dimension mismatch"):
        divergence(P, np.array([0.2, 0.3, 0.5]))
    with pytest.raises(ValueError, match="NaN"):
        divergence(P, np.array([np.nan, 1.0]), "euclidean")


def test_embedding_divergence_formula_and_ranking():
    sizes = np.array([1_000_000, 1_000, 30_000, 5_000])
    d = np.array([0.1, 0.9, 0.4, 0.6])  # source 0 is large and near, source 1 small and far
    log_s = np.log(sizes)
    z = lambda v: (v - v.mean()) / v.std()
    for k in (-0.5, -1.0, -3.0):
        e = embedding_divergence(sizes, d, k)
        np.testing.assert_allclose(e, z(log_s) + k * z(d))
        assert np.argmax(e) == 0 and np.argmin(e) == 1
    rows = embedding_divergence(sizes, np.stack([d, d[::-1]]), -1.0)
    np.testing.assert_allclose(rows[0], embedding_divergence(sizes, d, -1.0))


def test_embedding_divergence_constant_input_and_errors():
    np.testing.assert_allclose(
        embedding_divergence([10, 10, 10], [0.1, 0.2, 0.3], -1.0),
        -np.array([-1.0, 0.0, 1.0]) * np.sqrt(1.5),
        atol=1e-12,
    )
    with pytest.raises(ValueError, match="shape mismatch"):
        embedding_divergence([10, 20], [0.1, 0.2, 0.3], -1)
    with pytest.raises(ValueError, match="positive"):
        embedding_divergence([0, 20], [0.1, 0.2], -1)
    with pytest.raises(ValueError, match="two candidate"):
        embedding_divergence([20], [0.1], -1)


def test_fit_k_recovers_the_generating_balance():
    rng = np.random.default_rng(0)
    targets, sources = 12, 8
    sizes = 10 ** rng.uniform(3, 6, sources)
    d = rng.uniform(0, 1, (targets, sources))
    z = lambda v: (v - v.mean(-1, keepdims=True)) / v.std(-1, keepdims=True)
    improvement = z(np.log(sizes)) - 2.0 * z(d)
    result = fit_k(sizes, d, improvement, top=sources)
    assert result.k == pytest.approx(-2.0)
    assert result.mean_spearman.max() == pytest.approx(1.0)
    assert result.mean_spearman.shape == result.grid.shape
    assert fit_k(sizes, d, improvement, top=3).k < 0


def test_fit_k_errors():
    with pytest.raises(ValueError, match="top"):
        fit_k([1, 2], np.ones((2, 2)), np.ones((2, 2)), top=3)
    with pytest.raises(ValueError, match="shape mismatch"):
        fit_k([1, 2], np.ones((2, 2)), np.ones((3, 2)))
