import numpy as np
import pytest
from scipy import stats

from transferlib.evaluation import kendall, pearson, spearman, weighted_kendall

RNG = np.random.default_rng(0)
X = RNG.standard_normal(30)
Y = X + 0.5 * RNG.standard_normal(30)


def test_pearson_hand_computed():
    x, y = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 2.0, 4.0])
    r = ((x - x.mean()) @ (y - y.mean())) / np.sqrt(
        ((x - x.mean()) ** 2).sum() * ((y - y.mean()) ** 2).sum()
    )
    t = r * np.sqrt(2 / (1 - r**2))
    statistic, p_value = pearson(x, y)
    assert statistic == pytest.approx(r)
    assert p_value == pytest.approx(2 * stats.t.sf(t, 2))


@pytest.mark.parametrize(
    "function,reference",
    [(pearson, stats.pearsonr), (spearman, stats.spearmanr), (kendall, stats.kendalltau)],
)
def test_matches_scipy(function, reference):
    statistic, p_value = function(X, Y)
    expected = reference(X, Y)
    assert (statistic, p_value) == pytest.approx((expected.statistic, expected.pvalue))
    assert isinstance(statistic, float) and isinstance(p_value, float)


def test_rank_statistics_of_monotone_relation():
    assert spearman(X, np.exp(X))[0] == pytest.approx(1.0)
    assert kendall(X, -(X**3))[0] == pytest.approx(-1.0)
    assert weighted_kendall(X, np.exp(X))[0] == pytest.approx(1.0)


def test_weighted_kendall_has_no_p_value():
    statistic, p_value = weighted_kendall(X, Y)
    assert statistic == pytest.approx(stats.weightedtau(X, Y).statistic)
    assert p_value is None  # scipy defines none; None rather than NaN


@pytest.mark.parametrize("function", [pearson, spearman, kendall, weighted_kendall])
def test_bad_inputs(function):
    with pytest.raises(ValueError, match="length mismatch"):
        function([1, 2, 3], [1, 2, 3, 4])
    with pytest.raises(ValueError, match="at least 3"):
        function([1, 2], [2, 1])
    with pytest.raises(ValueError, match="NaN"):
        function([1, np.nan, 3], [1, 2, 3])
    with pytest.raises(ValueError, match="constant"):
        function([1, 1, 1], [1, 2, 3])
    with pytest.raises(ValueError, match="1-D"):
        function([[1, 2, 3]], [[1, 2, 3]])
    with pytest.raises(TypeError, match="numeric"):
        function(["a", "b", "c"], [1, 2, 3])
