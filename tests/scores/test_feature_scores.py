"""GBC, TransRate and N-LEEP against textbook loops and limiting cases."""

import numpy as np
import pytest

from transferlib.scores import gbc, leep, nleep, transrate


def _data(seed, n=120, d=6, k=3, shift=1.0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    return rng.standard_normal((n, d)) * (1 + 0.2 * y[:, None]) + shift * np.eye(k, d)[y], y


def _textbook_gbc(x, y, spherical=False, var_floor=1e-8):
    classes = np.unique(y)
    floor = var_floor * x.var(0).mean()
    means = [x[y == c].mean(0) for c in classes]
    variances = [x[y == c].var(0) + floor for c in classes]
    if spherical:
        variances = [np.full(x.shape[1], v.mean()) for v in variances]
    total = 0.0
    for i in range(len(classes)):
        for j in range(len(classes)):
            if i != j:
                s = 0.5 * (variances[i] + variances[j])
                distance = 0.125 * np.sum((means[i] - means[j]) ** 2 / s) + 0.5 * (
                    np.sum(np.log(s))
                    - 0.5 * np.sum(np.log(variances[i]))
                    - 0.5 * np.sum(np.log(variances[j]))
                )
                total += np.exp(-distance)
    return -total


@pytest.mark.parametrize("gaussian", ["diagonal", "spherical"])
def test_gbc_matches_textbook(gaussian):
    x, y = _data(0)
    assert gbc(x, y, gaussian) == pytest.approx(
        _textbook_gbc(x, y, gaussian == "spherical"), rel=1e-10
    )


@pytest.mark.parametrize("d", [1, 7, 12, 64, 100, 2048])
def test_gbc_log_terms_summed_through_products_match_textbook(d):
    # the log terms are summed as logs of products of up to 16 columns (folding the width
    # in halves while it is even); every width pattern must give the term-by-term sum
    x, y = _data(4, n=90, d=d, k=4)
    assert gbc(x, y) == pytest.approx(_textbook_gbc(x, y), rel=1e-12)


def test_gbc_product_overflow_falls_back_to_term_by_term_logs():
    # variances 1e50 apart in all 16 dimensions: the product of the 16 per-dimension factors
    # (~5e24 each) overflows; the coefficient itself, ~1e-198, must still be right
    rng = np.random.default_rng(5)
    y = np.repeat([0, 1], 50)
    x = rng.standard_normal((100, 16)) * np.where(y == 0, 1.0, 1e-25)[:, None]
    expected = _textbook_gbc(x, y, var_floor=0.0)
    assert -1e-190 < expected < -1e-210  # about -1e-198
    assert gbc(x, y, var_floor=0.0) == pytest.approx(expected, rel=1e-9)


def test_gbc_many_well_separated_classes_keeps_its_digits():
    rng = np.random.default_rng(3)
    y = np.arange(400) % 40
    x = rng.standard_normal((40, 60))[y] * 1.2 + rng.standard_normal((400, 60))
    expected = _textbook_gbc(x, y)
    assert -1e-6 < expected < 0
    assert gbc(x, y) == pytest.approx(expected, rel=1e-9)
    assert gbc(x + 1e3, y) == pytest.approx(expected, rel=1e-6)


def test_gbc_limits():
    x, y = _data(1, shift=0.0, n=3000)
    assert gbc(
        x[:, :1] * 0 + np.random.default_rng(0).standard_normal((3000, 1)), y
    ) == pytest.approx(-6, abs=0.05)
    far, y_far = _data(2, shift=50.0)
    assert gbc(far, y_far) == pytest.approx(0.0, abs=1e-12)
    assert gbc(far, y_far) > gbc(x[:120], y[:120])


def _coding_rate(z, eps):
    n, d = z.shape
    return 0.5 * np.linalg.slogdet(np.eye(d) + z.T @ z / (n * eps**2))[1]


def _textbook_transrate(x, y, eps):
    z = x - x.mean(0)
    return _coding_rate(z, eps) - sum(
        np.mean(y == c) * _coding_rate(z[y == c], eps) for c in np.unique(y)
    )


@pytest.mark.parametrize("n,d", [(120, 6), (20, 40), (120, 50)])
def test_transrate_matches_textbook(n, d):
    x, y = _data(3, n=n, d=d)
    for eps in (1e-2, 0.5):
        assert transrate(x, y, eps=eps) == pytest.approx(_textbook_transrate(x, y, eps), rel=1e-9)


def test_transrate_is_permutation_invariant_and_prefers_informative_features():
    x, y = _data(4, n=300)
    perm = np.random.default_rng(0).permutation(300)
    assert transrate(x[perm], y[perm]) == pytest.approx(transrate(x, y), rel=1e-10)
    noise = np.random.default_rng(1).standard_normal(x.shape)
    assert transrate(x, y, eps=0.5) > transrate(noise, y, eps=0.5)


def test_nleep_is_bounded_by_the_label_prior_and_zero():
    x, y = _data(5, n=150, d=8, shift=3.0)
    value = nleep(x, y, components_per_class=2, covariance_type="diag")
    assert -np.log(3) - 1e-9 <= value <= 0  # at least as good as the label prior, at most 0
    assert value > nleep(
        np.random.default_rng(0).standard_normal(x.shape),
        y,
        components_per_class=2,
        covariance_type="diag",
    )


@pytest.mark.parametrize("n,d", [(40, 300), (400, 30)])
def test_nleep_pca_keeps_scikit_learns_components(n, d):
    from sklearn.decomposition import PCA

    from transferlib.scores.nleep import _principal_scores

    generator = np.random.default_rng(7)
    x = generator.standard_normal((n, d)) @ generator.standard_normal((d, d))
    x -= x.mean(axis=0)
    ours = _principal_scores(x, 0.8)
    reference = PCA(n_components=0.8, svd_solver="full").fit_transform(x)
    assert ours.shape == reference.shape
    # components agree up to sign; ours puts each component's largest score on the positive side
    np.testing.assert_allclose(np.abs(ours), np.abs(reference), rtol=1e-7, atol=1e-9)
    assert np.all(ours[np.abs(ours).argmax(axis=0), np.arange(ours.shape[1])] > 0)


def test_nleep_with_one_component_per_point_class_recovers_labels():
    # one Gaussian per well-separated class: posteriors are one-hot up to rounding
    x, y = _data(6, n=90, d=3, shift=40.0)
    assert nleep(x, y, components_per_class=1, variance=1.0) == pytest.approx(0.0, abs=1e-6)
    assert leep(np.eye(3)[y], y) == 0.0
