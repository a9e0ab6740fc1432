"""H-score family against the textbook pseudo-inverse form, its invariances and bounds."""

import numpy as np
import pytest
from sklearn.covariance import ledoit_wolf

from transferlib.scores import (
    h_score,
    h_score_transferability,
    hgr_maximal_correlation,
    shrinkage_h_score,
)


def _data(seed, n=200, d=12, k=4, shift=0.4):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    x = rng.standard_normal((n, d)) + shift * np.eye(k, d)[y] * 3 + 2.0
    return x, y


def _textbook_h_score(x, y):
    cov = np.cov(x.T, bias=True)
    class_means = np.stack([x[y == c].mean(0) for c in np.unique(y)])
    between = np.cov(class_means[np.searchsorted(np.unique(y), y)].T, bias=True)
    return np.trace(np.linalg.pinv(cov, rtol=1e-10, hermitian=True) @ between)


@pytest.mark.parametrize("n,d", [(200, 12), (30, 80), (200, 199)])
def test_matches_textbook_pinv(n, d):
    x, y = _data(0, n=n, d=d)
    assert h_score(x, y) == pytest.approx(_textbook_h_score(x, y), rel=1e-8)


def test_rank_deficient_features_use_pseudo_inverse():
    x, y = _data(1)
    duplicated = np.concatenate([x, x[:, :3], x[:, :2] @ np.ones((2, 2))], axis=1)
    assert h_score(duplicated, y) == pytest.approx(h_score(x, y), rel=1e-8)
    assert h_score(duplicated, y) == pytest.approx(_textbook_h_score(duplicated, y), rel=1e-8)


def test_dead_units_are_left_out_without_an_eigendecomposition(monkeypatch):
    from transferlib.scores import _backend

    x, y = _data(2, d=20)
    dead = np.concatenate([np.zeros((len(x), 3)), x, np.zeros((len(x), 1))], axis=1)
    expected = h_score(x, y)

    def refuse(*_):
        raise AssertionError("a full-rank covariance after dropping dead units needs no eigh")

    monkeypatch.setattr(_backend.Namespace, "eigh", refuse)
    assert h_score(dead, y) == pytest.approx(expected, rel=1e-10)
    assert h_score(np.zeros((len(x), 4)), y) == 0.0
    monkeypatch.undo()
    assert h_score(dead, y) == pytest.approx(_textbook_h_score(dead, y), rel=1e-8)


@pytest.mark.parametrize("seed", range(3))
def test_invariant_to_invertible_affine_maps(seed):
    x, y = _data(seed)
    rng = np.random.default_rng(100 + seed)
    a = rng.standard_normal((x.shape[1], x.shape[1])) + 3 * np.eye(x.shape[1])
    assert h_score(x @ a + rng.standard_normal(x.shape[1]), y) == pytest.approx(
        h_score(x, y), rel=1e-8
    )


def test_one_hot_label_features_reach_the_maximum():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 300)
    assert h_score(np.eye(5)[y], y) == pytest.approx(4.0, abs=1e-10)
    # any invertible map of the one-hot code, plus noise-free extra columns, keeps |Y| - 1
    code = np.eye(5)[y] @ rng.standard_normal((5, 5))
    assert h_score(np.hstack([code, rng.standard_normal((300, 3))]), y) == pytest.approx(
        4.0, abs=1e-8
    )


@pytest.mark.parametrize("n,k", [(49, 4), (103, 3), (60, 2)])
def test_fewer_samples_than_dimensions_score_exactly_the_maximum(n, k):
    # full-rank centred features with n <= d separate every labelling: H = |Y| - 1 exactly,
    # not up to rounding (tasks of such a sweep would otherwise correlate on rounding noise)
    rng = np.random.default_rng(n)
    y = np.arange(n) % k
    assert h_score(rng.standard_normal((n, 2 * n)), y) == k - 1


@pytest.mark.parametrize("seed", range(4))
def test_bounded_by_number_of_classes_minus_one(seed):
    x, y = _data(seed, n=50, d=30, shift=2.0)
    value = h_score(x, y)
    assert 0.0 <= value <= 3.0 + 1e-9


def test_shrinkage_matches_textbook_with_sklearn_ledoit_wolf():
    for n, d in [(200, 12), (40, 60)]:
        x, y = _data(2, n=n, d=d)
        shrunk, alpha = ledoit_wolf(x)
        class_means = np.stack([x[y == c].mean(0) for c in range(4)])
        between = np.cov(class_means[y].T, bias=True)
        expected = np.trace(np.linalg.solve(shrunk, (1 - alpha) * between))
        assert shrinkage_h_score(x, y) == pytest.approx(expected, rel=1e-8)


def test_transferability_default_divides_by_classes_minus_one():
    x, y = _data(3)
    value = h_score_transferability(x, y)
    assert value == pytest.approx(h_score(x, y) / 3)
    assert 0 <= value <= 1


def test_transferability_with_codes_uses_chi2_information():
    rng = np.random.default_rng(4)
    codes = rng.integers(0, 6, 400)
    y = np.where(rng.random(400) < 0.7, codes % 3, rng.integers(0, 3, 400))
    x = np.eye(6)[codes] @ rng.standard_normal((6, 6))  # features are a function of the code
    joint = np.zeros((6, 3))
    np.add.at(joint, (codes, y), 1 / 400)
    chi2_information = (joint**2 / np.outer(joint.sum(1), joint.sum(0))).sum() - 1
    expected = h_score(x, y) / chi2_information
    assert h_score_transferability(x, y, input_codes=codes) == pytest.approx(expected, rel=1e-10)
    assert h_score_transferability(x, y, input_codes=codes, method="ace") == pytest.approx(
        expected, rel=1e-8
    )
    assert h_score_transferability(x, y, input_codes=codes) <= 1 + 1e-12


def test_transferability_deterministic_codes_equal_closed_form():
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 10, 300)
    y = codes % 4  # the label is a function of the input code: ||B||^2 = |Y| - 1
    x = rng.standard_normal((300, 5))
    assert h_score_transferability(x, y, input_codes=codes) == pytest.approx(
        h_score_transferability(x, y), rel=1e-10
    )


def test_hgr_identical_and_independent_variables():
    assert hgr_maximal_correlation([0, 1, 2, 0, 1, 2], [0, 1, 2, 0, 1, 2], 2) == pytest.approx(
        [1, 1]
    )
    x, y = np.meshgrid(np.arange(3), np.arange(4))  # every pair once: independent
    np.testing.assert_allclose(hgr_maximal_correlation(x.ravel(), y.ravel(), 2), 0.0, atol=1e-12)


def test_hgr_functions_are_normalised_and_attain_the_correlations():
    rng = np.random.default_rng(6)
    x = rng.integers(0, 7, 500)
    y = (x // 2 + rng.integers(0, 2, 500)) % 4
    for method in ("svd", "ace"):
        rho, f, g = hgr_maximal_correlation(x, y, 3, method=method, return_functions=True)
        fx, gy = f[x], g[y]
        np.testing.assert_allclose(fx.mean(0), 0, atol=1e-10)
        np.testing.assert_allclose(fx.T @ fx / 500, np.eye(3), atol=1e-10)
        np.testing.assert_allclose(gy.T @ gy / 500, np.eye(3), atol=1e-10)
        np.testing.assert_allclose(np.diag(fx.T @ gy / 500), rho, atol=1e-10)
        assert np.all(np.diff(rho) <= 1e-12)
    np.testing.assert_allclose(
        hgr_maximal_correlation(x, y, 3, method="ace"), hgr_maximal_correlation(x, y, 3), atol=1e-9
    )


def test_hgr_rejects_bad_k_and_method():
    with pytest.raises(ValueError, match="k must be"):
        hgr_maximal_correlation([0, 1, 0, 1], [0, 1, 1, 0], 2)
    with pytest.raises(ValueError, match="method"):
        hgr_maximal_correlation([0, 1, 0, 1], [0, 1, 1, 0], 1, method="power")


def _designed(n, d, spectrum, seed=7):
    """Centred features whose covariance has exactly the given non-zero spectrum."""
    rng = np.random.default_rng(seed)
    r = len(spectrum)
    centred = rng.standard_normal((n, r))
    centred -= centred.mean(0)
    u = np.linalg.qr(centred)[0]  # orthonormal columns, orthogonal to the constant vector
    q = np.linalg.qr(rng.standard_normal((d, r)))[0]
    return u @ np.diag(np.sqrt(n * np.asarray(spectrum, float))) @ q.T + 3.0


@pytest.mark.parametrize(
    "n,d,spectrum",
    [
        (60, 6, [5, 4, 3, 2, 1, 0.5]),  # d < n, well conditioned: Cholesky path
        (60, 6, [5, 4, 3, 2, 1, 1e-15]),  # one eigenvalue below rtol * max: dropped
        (60, 6, [5, 4, 3, 2]),  # rank deficient (two exact zeros)
        (7, 12, [5, 4, 3, 2, 1, 0.5]),  # n <= d: Gram side, full rank n - 1
        (7, 12, [5, 4, 3, 2, 1, 1e-15]),  # Gram side with a dropped eigenvalue
    ],
)
def test_pseudo_inverse_tolerance_on_both_sides(n, d, spectrum):
    x = _designed(n, d, spectrum)
    y = np.arange(n) % 3
    cov = np.cov(x.T, bias=True)
    means = np.stack([x[y == c].mean(0) for c in range(3)])
    between = np.cov(means[y].T, bias=True)
    expected = np.trace(np.linalg.pinv(cov, rtol=1e-12, hermitian=True) @ between)
    assert h_score(x, y, rtol=1e-12) == pytest.approx(expected, rel=1e-7)
