"""The degenerate and extreme inputs of issue 12, each with its documented answer."""

import math
import warnings

import numpy as np
import pytest

from transferlib import evaluation
from transferlib.scores import (
    gbc,
    h_score,
    h_score_transferability,
    hgr_maximal_correlation,
    leep,
    logme,
    nce,
    nleep,
    p2l,
    shrinkage_h_score,
    transrate,
)

RNG = np.random.default_rng(0)
Y = np.arange(60) % 3
X = RNG.standard_normal((60, 5)) + np.eye(3, 5)[Y]


# -- LogME ---------------------------------------------------------------------------------


def test_logme_unbounded_evidence_is_an_error():
    """One-hot targets in the span of the features with n > rank: evidence -> +inf."""
    y = np.arange(12) % 4
    with pytest.raises(ValueError, match="unbounded"):
        logme(np.eye(4)[y], y)
    noisy = np.hstack([np.eye(4)[y], RNG.standard_normal((12, 3))])  # still in the span
    with pytest.raises(ValueError, match="unbounded"):
        logme(noisy, y)


def test_logme_all_zero_features_give_the_noise_only_evidence():
    counts = np.bincount(Y)
    n = len(Y)
    expected = np.mean(0.5 * n * np.log(n / counts) - 0.5 * n * (np.log(2 * np.pi) + 1)) / n
    assert logme(np.zeros((n, 4)), Y) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("scale", [1e-170, 1e150])
def test_logme_is_scale_invariant_at_extreme_scales(scale):
    assert logme(X * scale, Y) == pytest.approx(logme(X, Y), rel=1e-9)


def test_logme_needs_at_least_one_iteration():
    with pytest.raises(ValueError, match="max_iter must be >= 1"):
        logme(X, Y, max_iter=0)


# -- H-score family ------------------------------------------------------------------------


def test_h_score_never_inverts_the_structural_zero():
    """n < d: centring leaves rank n - 1; rtol = 0 must still give |Y| - 1, not |Y|."""
    x = RNG.standard_normal((9, 20))
    y = np.arange(9) % 3
    assert h_score(x, y, rtol=0.0) == pytest.approx(2.0, rel=1e-9)
    assert h_score(x, y) == pytest.approx(2.0, rel=1e-9)


def test_negative_rtol_is_rejected():
    with pytest.raises(ValueError, match="rtol must be >= 0"):
        h_score(X, Y, rtol=-1e-3)


@pytest.mark.parametrize("function", [h_score, shrinkage_h_score, h_score_transferability, gbc])
@pytest.mark.parametrize("scale", [1e-170, 1e150])
def test_scale_invariant_scores_at_extreme_scales(function, scale):
    assert function(X * scale, Y) == pytest.approx(function(X, Y), rel=1e-9)


def test_transferability_method_is_always_checked():
    with pytest.raises(ValueError, match="method must be one of"):
        h_score_transferability(X, Y, method="bogus")


@pytest.mark.parametrize("method", ["svd", "ace"])
def test_independent_variables_have_zero_correlation_and_zero_mean_functions(method):
    x, y = (a.ravel() for a in np.meshgrid(np.arange(3), np.arange(4)))  # independent
    rho, f, g = hgr_maximal_correlation(x, y, 2, method=method, return_functions=True)
    np.testing.assert_allclose(rho, 0.0, atol=1e-12)
    fx, gy = f[x], g[y]
    np.testing.assert_allclose(fx.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(gy.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(fx.T @ fx / len(x), np.eye(2), atol=1e-12)


# -- probabilities -------------------------------------------------------------------------


def test_half_precision_probabilities_are_accepted_and_normalised():
    logits = RNG.standard_normal((60, 7)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    half = probs.astype(np.float16)
    assert np.abs(half.astype(float).sum(1) - 1).max() > 1e-5  # old tolerance rejects it
    renormalised = half.astype(float) / half.astype(float).sum(1, keepdims=True)
    assert leep(half, Y) == pytest.approx(leep(renormalised, Y), rel=1e-12)
    with pytest.raises(ValueError, match="atol=1e-06"):
        leep(half, Y, atol=1e-6)


def test_leep_of_exact_one_hot_sources_is_zero_not_positive():
    assert leep(np.eye(3)[Y] * (1 + 1e-6), Y, atol=1e-5) == 0.0


# -- labels and scalar parameters ----------------------------------------------------------


def test_labels_of_different_types_are_not_merged():
    with pytest.raises(TypeError, match="mixes label types"):
        nce([0, "0", 1, 1], [0, 1, 0, 1])


@pytest.mark.parametrize(
    "call",
    [
        lambda: evaluation.relative_top_k_accuracy([1, 2, 3], [1, 2, 3], k=1.5),
        lambda: evaluation.dcg([1, 2, 3], [1, 2, 3], k=2.0),
        lambda: p2l.fit_k([1, 2, 3], np.ones((2, 3)), np.ones((2, 3)), top=2.5),
        lambda: hgr_maximal_correlation([0, 1, 2], [0, 1, 2], k=1.5),
        lambda: transrate(X, Y, eps=None),
        lambda: evaluation.relative_top_k_accuracy([1, 2, 3], [1, 2, 3], k=None),
        lambda: h_score(X, Y, rtol="1e-9"),
    ],
)
def test_non_integer_and_none_parameters_are_type_errors(call):
    with pytest.raises(TypeError, match="must be an integer|must be a real number"):
        call()


def test_nan_variance_floor_is_rejected():
    with pytest.raises(ValueError, match="var_floor must be finite"):
        gbc(X, Y, var_floor=float("nan"))


def test_tiny_eps_transrate_is_finite_and_follows_the_scaling_identity():
    """TrR(cZ, c eps) = TrR(Z, eps); eps = 1e-170 used to divide by zero."""
    value = transrate(X, Y, eps=1e-170)
    assert math.isfinite(value)
    assert transrate(X * 2.0**-500, Y, eps=1e-170 * 2.0**-500) == pytest.approx(value, rel=1e-12)
    # d < n and full rank: R(Z) - R(Z|Y) grows like (d - sum_y p_y d) log(1/eps) = 0 here,
    # so the value converges as eps -> 0
    assert transrate(X, Y, eps=1e-120) == pytest.approx(value, rel=1e-6)


# -- row order and conventions -------------------------------------------------------------


def test_nleep_does_not_depend_on_row_order():
    perm = np.random.default_rng(1).permutation(len(Y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = nleep(X, Y, components_per_class=2)
        b = nleep(X[perm], Y[perm], components_per_class=2)
    assert a == b


def test_gbc_spherical_uses_the_d_dimensional_determinant():
    """Two classes with equal means: D_B is only the log-determinant term, which for
    Sigma = v I_d carries the factor d (Google's code drops it)."""
    x = np.vstack([RNG.standard_normal((400, 8)), 3.0 * RNG.standard_normal((400, 8))])
    x -= np.where(np.arange(800)[:, None] < 400, x[:400].mean(0), x[400:].mean(0))
    y = np.repeat([0, 1], 400)
    v = np.array([x[:400].var(0).mean(), x[400:].var(0).mean()]) + 1e-8 * x.var(0).mean()
    distance = 0.5 * 8 * np.log(v.mean() / np.sqrt(v[0] * v[1]))
    assert gbc(x, y, "spherical") == pytest.approx(-2 * np.exp(-distance), rel=1e-9)


# -- evaluation at extreme magnitudes ------------------------------------------------------


def test_evaluation_statistics_at_extreme_magnitudes():
    s, m = np.array([0.9, 0.1, 0.5, 0.7]), np.array([0.6, 0.8, 0.7, 0.5])
    assert evaluation.ndcg(s, m * 1e308) == pytest.approx(evaluation.ndcg(s, m), rel=1e-12)
    assert evaluation.pearson(s * 1e-300, m)[0] == pytest.approx(evaluation.pearson(s, m)[0])
    fit = evaluation.linear_fit_with_ci(s * 1e-170, m)
    assert fit.slope == pytest.approx(evaluation.linear_fit_with_ci(s, m).slope * 1e170)
    table = evaluation.transferability_levels([-1e308, 0.0, 1e308], [1.0, 2.0, 3.0], n_levels=2)
    assert np.isfinite(table[["lower", "upper", "mean_score"]].to_numpy()).all()
    assert table["count"].tolist() == [1, 2]


def test_linear_fit_of_constant_y_reports_zero_correlation():
    fit = evaluation.linear_fit_with_ci([0.0, 1.0, 2.0], [5.0, 5.0, 5.0])
    assert (fit.slope, fit.intercept, fit.r, fit.p_value) == (0.0, 5.0, 0.0, 1.0)
