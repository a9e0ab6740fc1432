"""Property-based tests of the evaluation statistics: ranges, invariances, and a finite
value or a clean ValueError/TypeError on arbitrary finite input."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from transferlib import evaluation

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True, database=None)
FINITE = st.floats(allow_nan=False, allow_infinity=False)
# integer values: scaling them by 2**+-900 is exact (no underflow to 0 that would add ties)
MODERATE = st.integers(-(10**6), 10**6).map(float)


@st.composite
def pairs(draw, elements=FINITE, min_size=3):
    n = draw(st.integers(min_size, 12))
    x = draw(hnp.arrays(np.float64, n, elements=elements))
    y = draw(hnp.arrays(np.float64, n, elements=elements))
    return x, y


def _finite_or_clean_error(function, *args):
    try:
        result = function(*args)
    except (ValueError, TypeError) as error:
        assert str(error)
        return None
    return result


@pytest.mark.parametrize(
    "function",
    [evaluation.pearson, evaluation.spearman, evaluation.kendall, evaluation.weighted_kendall],
)
@SETTINGS
@given(data=pairs())
def test_correlations_on_arbitrary_finite_input(function, data):
    result = _finite_or_clean_error(function, *data)
    if result is not None:
        statistic, p_value = result
        assert -1 - 1e-12 <= statistic <= 1 + 1e-12
        assert p_value is None or 0 <= p_value <= 1


@pytest.mark.parametrize("function", [evaluation.pearson, evaluation.spearman, evaluation.kendall])
@SETTINGS
@given(data=pairs(elements=MODERATE), exponent=st.integers(-900, 900), seed=st.integers(0, 99))
def test_correlations_are_symmetric_and_scale_and_order_invariant(function, data, exponent, seed):
    x, y = data
    result = _finite_or_clean_error(function, x, y)
    if result is None:
        return
    perm = np.random.default_rng(seed).permutation(len(x))
    assert function(y, x)[0] == pytest.approx(result[0], abs=1e-12)
    assert function(np.ldexp(x, exponent), y)[0] == pytest.approx(result[0], abs=1e-12)
    assert function(x[perm], y[perm])[0] == pytest.approx(result[0], abs=1e-12)


@SETTINGS
@given(data=pairs(min_size=1), k=st.integers(1, 12), seed=st.integers(0, 99))
def test_ranking_metrics_ranges_and_order_invariance(data, k, seed):
    scores, relevance = data
    k = min(k, len(scores))
    perm = np.random.default_rng(seed).permutation(len(scores))
    value = _finite_or_clean_error(evaluation.ndcg, scores, relevance, k)
    if value is not None:
        assert 0 <= value <= 1
        assert evaluation.ndcg(scores[perm], relevance[perm], k) == pytest.approx(value)
    positive = np.abs(relevance) + 1.0
    relative = evaluation.relative_top_k_accuracy(scores, positive, k)
    assert 0 <= relative <= 1
    assert evaluation.best_in_top_k(scores, positive, len(scores))
    dcg = _finite_or_clean_error(evaluation.dcg, scores, relevance, k)
    assert dcg is None or math.isfinite(dcg)


@SETTINGS
@given(data=pairs(min_size=1), n_levels=st.integers(1, 6), seed=st.integers(0, 99))
def test_levels_count_every_task_and_ignore_order(data, n_levels, seed):
    scores, metric = data
    table = _finite_or_clean_error(evaluation.transferability_levels, scores, metric, n_levels)
    if table is None:
        return
    assert table["count"].sum() == len(scores)
    filled = table[table["count"] > 0]
    assert np.isfinite(filled[["lower", "upper", "mean_metric", "mean_score"]]).all().all()
    perm = np.random.default_rng(seed).permutation(len(scores))
    again = evaluation.transferability_levels(scores[perm], metric[perm], n_levels)
    assert again["count"].tolist() == table["count"].tolist()


@SETTINGS
@given(data=pairs())
def test_linear_fit_on_arbitrary_finite_input(data):
    fit = _finite_or_clean_error(evaluation.linear_fit_with_ci, *data)
    if fit is None:
        return
    values = [fit.slope, fit.intercept, fit.r, fit.p_value, fit.x_mean, fit.residual_std]
    assert all(math.isfinite(v) for v in values) and -1 <= fit.r <= 1
    band = _finite_or_clean_error(fit.band, data[0])
    if band is not None:
        line, lower, upper = band
        assert np.all(lower <= line) and np.all(line <= upper)
