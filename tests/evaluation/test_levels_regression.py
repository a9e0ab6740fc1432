import numpy as np
import pytest
from scipy import stats

from transferlib.evaluation import LinearFit, linear_fit_with_ci, transferability_levels


def test_levels_equal_width_bins():
    scores = np.array([0.0, 0.1, 0.45, 0.5, 0.95, 1.0])
    metric = np.array([1.0, 3.0, 5.0, 6.0, 8.0, 10.0])
    table = transferability_levels(scores, metric, n_levels=2)
    assert list(table["level"]) == [1, 2]
    np.testing.assert_allclose(table["lower"], [0.0, 0.5])
    np.testing.assert_allclose(table["upper"], [0.5, 1.0])
    assert list(table["count"]) == [3, 3]  # 0.5 opens the upper bin; the max is included
    np.testing.assert_allclose(table["mean_metric"], [3.0, 8.0])
    np.testing.assert_allclose(table["mean_score"], [0.55 / 3, 2.45 / 3])
    assert table["std_metric"].iloc[0] == pytest.approx(2.0)


def test_levels_keep_empty_bins():
    table = transferability_levels([0.0, 0.05, 1.0], [1.0, 2.0, 3.0], n_levels=5)
    assert list(table["count"]) == [2, 0, 0, 0, 1]
    assert np.isnan(table["mean_metric"].iloc[2])
    assert table["count"].sum() == 3


def test_levels_bad_inputs():
    with pytest.raises(ValueError, match="all equal"):
        transferability_levels([1.0, 1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="n_levels"):
        transferability_levels([0.0, 1.0], [1.0, 2.0], n_levels=0)
    with pytest.raises(ValueError, match="length mismatch"):
        transferability_levels([0.0, 1.0], [1.0])


def test_linear_fit_hand_computed():
    x = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    y = np.array([1.0, 2.9, 5.2, 7.1, 8.8])
    fit = linear_fit_with_ci(x, y, level=0.9)
    slope, intercept = np.polyfit(x, y, 1)
    assert isinstance(fit, LinearFit)
    assert (fit.slope, fit.intercept) == pytest.approx((slope, intercept))
    assert fit.r == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert fit.p_value == pytest.approx(stats.pearsonr(x, y).pvalue)
    residual_std = np.sqrt(np.sum((y - (intercept + slope * x)) ** 2) / 3)
    fitted, lower, upper = fit.band(np.array([2.0, 4.0]))
    half_at_mean = stats.t.ppf(0.95, 3) * residual_std / np.sqrt(5)
    assert upper[0] - fitted[0] == pytest.approx(half_at_mean)
    half_at_4 = stats.t.ppf(0.95, 3) * residual_std * np.sqrt(1 / 5 + 4 / 10)
    assert upper[1] - fitted[1] == pytest.approx(half_at_4)
    np.testing.assert_allclose(fitted - lower, upper - fitted)


def test_band_covers_the_true_mean_at_the_nominal_rate():
    rng = np.random.default_rng(0)
    x = np.linspace(0, 1, 12)
    covered = 0
    trials = 600
    for _ in range(trials):
        y = 2.0 + 3.0 * x + rng.standard_normal(12)
        _, lower, upper = linear_fit_with_ci(x, y, level=0.9).band(np.array([0.8]))
        covered += lower[0] <= 2.0 + 3.0 * 0.8 <= upper[0]
    assert abs(covered / trials - 0.9) < 0.04


def test_linear_fit_bad_inputs():
    with pytest.raises(ValueError, match="at least 3"):
        linear_fit_with_ci([0, 1], [1, 2])
    with pytest.raises(ValueError, match="constant"):
        linear_fit_with_ci([1, 1, 1], [1, 2, 3])
    with pytest.raises(ValueError, match="level"):
        linear_fit_with_ci([0, 1, 2], [1, 2, 4], level=1.5)
    with pytest.raises(ValueError, match="NaN"):
        linear_fit_with_ci([0, 1, np.inf], [1, 2, 4])
    with pytest.raises(ValueError, match="length mismatch"):
        linear_fit_with_ci([0, 1, 2], [1, 2])
