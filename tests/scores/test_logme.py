"""LogME: both Gram sides, and the value is the maximum of the marginal evidence."""

import warnings

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import multivariate_normal

from transferlib.scores import logme


def _data(seed, n, d, k=3):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    return rng.standard_normal((n, d)) + 0.7 * np.eye(k, d)[y], y


def _direct_log_evidence(x, target, alpha, beta):
    """log N(t; 0, X X^T / alpha + I / beta): the marginal likelihood with w integrated out."""
    n = x.shape[0]
    return multivariate_normal(np.zeros(n), x @ x.T / alpha + np.eye(n) / beta).logpdf(target)


def _max_log_evidence(x, target):
    """Maximise the direct evidence over (log alpha, log beta) numerically."""
    result = minimize(
        lambda p: -_direct_log_evidence(x, target, np.exp(p[0]), np.exp(p[1])),
        x0=[0.0, 0.0],
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000},
    )
    return -result.fun


@pytest.mark.parametrize("n,d", [(80, 10), (12, 40)])
def test_both_gram_sides_agree(n, d):
    """Same data, both decompositions. When n < d the evidence can be maximised only as
    beta -> infinity, approached like 1/beta, so the two stop within ~1e-8 of each other."""
    x, y = _data(0, n, d)
    assert logme(x, y, gram="features") == pytest.approx(logme(x, y, gram="samples"), rel=1e-7)
    assert logme(x, y) == pytest.approx(logme(x, y, gram="features"), rel=1e-7)


@pytest.mark.parametrize("n,d,seed", [(40, 6, 1), (30, 3, 2)])
def test_value_is_the_maximum_of_the_direct_evidence(n, d, seed):
    """LogME = mean over classes of max_{alpha, beta} log p(y_c | F) / n, with the evidence
    written as a Gaussian density (no eigenbasis, no fixed point)."""
    x, y = _data(seed, n, d)
    expected = np.mean([_max_log_evidence(x, (y == c).astype(float)) for c in range(3)]) / n
    assert logme(x, y) == pytest.approx(expected, abs=1e-7)


def test_duplicated_columns_stay_finite_and_agree_between_sides():
    """Duplicated columns change the model (prior on more weights) but must stay finite and
    agree between the two Gram sides."""
    x, y = _data(3, 30, 8)
    wide = np.hstack([x, x])
    assert np.isfinite(logme(wide, y))
    assert logme(wide, y, gram="features") == pytest.approx(
        logme(wide, y, gram="samples"), rel=1e-9
    )


def test_uninformative_class_converges_without_warning():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((60, 5))
    y = rng.integers(0, 2, 60)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(logme(x, y))


def test_iteration_limit_warns():
    x, y = _data(5, 40, 6)
    with pytest.warns(RuntimeWarning, match="max_iter=1"):
        value = logme(x, y, max_iter=1)
    assert np.isfinite(value) and value <= logme(x, y) + 1e-12
