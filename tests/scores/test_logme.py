"""LogME: both Gram sides, the evidence formula, and that the fixed point is a maximum."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from transferlib.scores import logme
from transferlib.scores.logme import _logme_evidence


def _data(seed, n, d, k=3):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    return rng.standard_normal((n, d)) + 0.7 * np.eye(k, d)[y], y


def _direct_log_evidence(x, target, alpha, beta):
    """log N(t; 0, X X^T / alpha + I / beta): the marginal likelihood with w integrated out."""
    n = x.shape[0]
    return multivariate_normal(np.zeros(n), x @ x.T / alpha + np.eye(n) / beta).logpdf(target)


def _textbook_evidence(x, target, alpha, beta):
    """The closed form of You et al. / Bishop eq. 3.86 evaluated with dense D x D algebra."""
    n, d = x.shape
    a = alpha * np.eye(d) + beta * x.T @ x
    m = beta * np.linalg.solve(a, x.T @ target)
    return (
        0.5 * d * np.log(alpha)
        + 0.5 * n * np.log(beta)
        - 0.5 * n * np.log(2 * np.pi)
        - 0.5 * beta * np.sum((x @ m - target) ** 2)
        - 0.5 * alpha * m @ m
        - 0.5 * np.linalg.slogdet(a)[1]
    )


@pytest.mark.parametrize("n,d", [(80, 10), (12, 40)])
def test_both_gram_sides_agree(n, d):
    """Same data, both decompositions. When n < d the evidence can be maximised only as
    beta -> infinity, approached like 1/beta, so the two stop within ~1e-8 of each other."""
    x, y = _data(0, n, d)
    assert logme(x, y, gram="features") == pytest.approx(logme(x, y, gram="samples"), rel=1e-7)
    assert logme(x, y) == pytest.approx(logme(x, y, gram="features"), rel=1e-7)


@pytest.mark.parametrize("gram", ["features", "samples"])
@pytest.mark.parametrize("n,d", [(40, 6), (9, 25)])
def test_evidence_formula_at_the_starting_point(n, d, gram):
    """With no iteration the evidence is evaluated at alpha = beta = 1 (well conditioned)."""
    x, y = _data(1, n, d)
    evidence = _logme_evidence(x, y, gram, None, 0, 1e-12)
    for c in range(3):
        target = (y == c).astype(float)
        assert evidence.log_evidence[c] == pytest.approx(
            _direct_log_evidence(x, target, 1, 1), rel=1e-11
        )
        assert evidence.log_evidence[c] == pytest.approx(
            _textbook_evidence(x, target, 1, 1), rel=1e-11
        )


@pytest.mark.parametrize("n,d", [(40, 6), (9, 25)])
def test_evidence_matches_direct_formula_at_the_fixed_point(n, d):
    x, y = _data(1, n, d)
    evidence = _logme_evidence(x, y, "auto", None, 1000, 1e-12)
    for c in range(3):
        target = (y == c).astype(float)
        alpha, beta = evidence.alpha[c], evidence.beta[c]
        # beta can run to ~1e7 when n < d (targets in the range of F): the dense formula
        # loses digits there, hence 1e-8 rather than 1e-11
        assert evidence.log_evidence[c] == pytest.approx(
            _direct_log_evidence(x, target, alpha, beta), rel=1e-8
        )
    assert logme(x, y) == pytest.approx(evidence.log_evidence.mean() / n, rel=1e-12)


@pytest.mark.parametrize("n,d", [(40, 6), (9, 25)])
def test_fixed_point_maximises_the_evidence(n, d):
    x, y = _data(2, n, d)
    evidence = _logme_evidence(x, y, "auto", None, 1000, 1e-12)
    for c in range(3):
        target = (y == c).astype(float)
        alpha, beta = evidence.alpha[c], evidence.beta[c]
        best = _direct_log_evidence(x, target, alpha, beta)
        for fa, fb in [(1.05, 1), (0.95, 1), (1, 1.05), (1, 0.95)]:
            assert _direct_log_evidence(x, target, alpha * fa, beta * fb) <= best + 1e-9


def test_rank_deficient_features_same_as_deduplicated_up_to_prior_terms():
    """Duplicated columns change the model (prior on more weights) but must stay finite and
    agree between the two Gram sides."""
    x, y = _data(3, 30, 8)
    wide = np.hstack([x, x])
    assert np.isfinite(logme(wide, y))
    assert logme(wide, y, gram="features") == pytest.approx(
        logme(wide, y, gram="samples"), rel=1e-9
    )


def test_uninformative_class_converges():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((60, 5))
    y = rng.integers(0, 2, 60)
    value = logme(x, y)
    assert np.isfinite(value)
