import numpy as np
import pytest
from sklearn.metrics import dcg_score, ndcg_score

from transferlib.evaluation import (
    best_in_top_k,
    dcg,
    ndcg,
    relative_top_k_accuracy,
    top_k_regret,
)

SCORES = np.array([0.9, 0.1, 0.5, 0.7])
ACCURACY = np.array([0.6, 0.8, 0.7, 0.5])  # the best model (index 1) is ranked last


def test_relative_top_k_accuracy_hand_computed():
    assert relative_top_k_accuracy(SCORES, ACCURACY, 1) == pytest.approx(0.6 / 0.8)
    assert relative_top_k_accuracy(SCORES, ACCURACY, 3) == pytest.approx(0.7 / 0.8)
    assert relative_top_k_accuracy(SCORES, ACCURACY, 4) == 1.0


def test_top_k_regret_hand_computed():
    assert top_k_regret(SCORES, ACCURACY, 1) == pytest.approx(0.8 - 0.6)
    assert top_k_regret(SCORES, ACCURACY, 3) == pytest.approx(0.8 - 0.7)
    assert top_k_regret(SCORES, ACCURACY, 4) == 0.0
    # ties in the scores go to the earlier item; a negative metric is allowed
    assert top_k_regret([1.0, 1.0, 0.0], [-2.0, -1.0, -3.0]) == pytest.approx(1.0)


def test_top_k_regret_is_the_difference_counterpart_of_relative_accuracy():
    rng = np.random.default_rng(1)
    for k in (1, 2, 5):
        scores, metric = rng.random(7), rng.random(7) + 0.1
        best = metric.max()
        assert top_k_regret(scores, metric, k) == pytest.approx(
            best * (1 - relative_top_k_accuracy(scores, metric, k))
        )


def test_best_in_top_k():
    assert not best_in_top_k(SCORES, ACCURACY, 3)
    assert best_in_top_k(SCORES, ACCURACY, 4)
    assert best_in_top_k(ACCURACY, ACCURACY, 1)


def test_dcg_hand_computed():
    # order by score: items 0, 3, 2, 1 with relevance 0.6, 0.5, 0.7, 0.8
    expected = 0.6 + 0.5 / np.log2(3) + 0.7 / 2 + 0.8 / np.log2(5)
    assert dcg(SCORES, ACCURACY) == pytest.approx(expected)
    assert dcg(SCORES, ACCURACY, k=2) == pytest.approx(0.6 + 0.5 / np.log2(3))


def test_dcg_and_ndcg_match_sklearn_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(5):
        scores = rng.integers(0, 4, 9).astype(float)  # many ties
        relevance = rng.random(9)
        for k in (None, 3):
            assert dcg(scores, relevance, k) == pytest.approx(dcg_score([relevance], [scores], k=k))
            assert ndcg(scores, relevance, k) == pytest.approx(
                ndcg_score([relevance], [scores], k=k)
            )


def test_ndcg_perfect_and_order_independent():
    assert ndcg(ACCURACY, ACCURACY) == pytest.approx(1.0)
    perm = np.array([2, 0, 3, 1])
    assert ndcg(SCORES[perm], ACCURACY[perm]) == pytest.approx(ndcg(SCORES, ACCURACY))
    assert ndcg(SCORES, ACCURACY) < 1


def test_bad_inputs():
    with pytest.raises(ValueError, match="k must be"):
        relative_top_k_accuracy(SCORES, ACCURACY, 5)
    with pytest.raises(ValueError, match="k must be"):
        best_in_top_k(SCORES, ACCURACY, 0)
    with pytest.raises(ValueError, match="k must be"):
        top_k_regret(SCORES, ACCURACY, 0)
    with pytest.raises(ValueError, match="float64 range"):
        top_k_regret([1.0, 0.0], [-1e308, 1e308])
    with pytest.raises(ValueError, match="positive"):
        relative_top_k_accuracy(SCORES, ACCURACY - 1, 1)
    with pytest.raises(ValueError, match="non-negative"):
        ndcg(SCORES, ACCURACY - 1)
    with pytest.raises(ValueError, match="all zero"):
        ndcg(SCORES, np.zeros(4))
    with pytest.raises(ValueError, match="length mismatch"):
        dcg(SCORES, ACCURACY[:3])
    with pytest.raises(ValueError, match="NaN"):
        dcg(SCORES, [0.1, np.nan, 0.2, 0.3])
