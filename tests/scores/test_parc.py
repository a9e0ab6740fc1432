"""PARC (Bolya et al. 2021): hand-computed cases, an independent re-implementation,
invariances, degenerate input and the two backends."""

import numpy as np
import pytest
import scipy.stats

from transferlib.scores import parc

RNG = np.random.default_rng(7)


def _reference(x, y, n_components=None):
    """PARC written out directly: (optional exact PCA,) column standardisation, the
    n x n Pearson correlations between rows, the exact two-valued label dissimilarity,
    and scipy's Spearman over the upper triangle."""
    z = x - x.mean(0)
    if n_components is not None:
        vt = np.linalg.svd(z, full_matrices=False)[2]
        vt = vt[:n_components]
        vt *= np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(1)])[:, None]
        z = z @ vt.T
    z = z / z.std(0)
    # rounded as documented: with two components every correlation is +-1 up to rounding
    feature_dissimilarity = np.round(1 - np.corrcoef(z), 10)
    k = len(np.unique(y))
    label_dissimilarity = np.where(y[:, None] == y[None, :], 0.0, k / (k - 1))
    upper = np.triu_indices(len(y), 1)
    return scipy.stats.spearmanr(feature_dissimilarity[upper], label_dissimilarity[upper])[0]


def _task(n=60, d=5, k=3, shift=1.5, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    return rng.standard_normal((n, d)) + shift * rng.standard_normal((k, d))[y], y


# Two columns: after standardisation every row correlation is +1 or -1 (the sign of
# z_0 - z_1 is + for the first two rows, - for the last two).
TWO_COLUMNS = np.array([[2.0, 0.0], [3.0, 1.0], [0.0, 2.0], [1.0, 3.0]])


def test_hand_computed_perfect_agreement():
    """Same-class pairs correlate +1, different-class pairs -1: D^F is D^Y up to scale."""
    assert parc(TWO_COLUMNS, [0, 0, 1, 1]) == pytest.approx(1.0, abs=1e-12)


def test_hand_computed_crossed_labels():
    """Labels [0, 1, 0, 1]: D^F = 1 - corr is 2 for both same-class pairs and 0, 2, 2, 0
    for the different-class pairs (0,1), (0,3), (1,2), (2,3). Mid-ranks 1.5, 1.5, 4.5 x 4,
    centred -2, -2, 1 x 4: sum of squares 12; the four different-class pairs sum to -2, so
    rho = -2 / sqrt(12 * 6 * (2/3) * (1/3)) = -0.5."""
    assert parc(TWO_COLUMNS, [0, 1, 0, 1]) == pytest.approx(-0.5, abs=1e-12)


@pytest.mark.parametrize("n,d,k", [(60, 5, 3), (30, 80, 2), (45, 3, 9), (50, 12, 4)])
def test_matches_independent_reimplementation(n, d, k):
    x, y = _task(n, d, k, seed=n + d)
    assert parc(x, y) == pytest.approx(_reference(x, y), abs=1e-12)


@pytest.mark.parametrize("n_components", [2, 4, 100])
def test_pca_option_matches_independent_reimplementation(n_components):
    x, y = _task(40, 6, 3, seed=3)
    expected = _reference(x, y, min(n_components, 6))
    assert parc(x, y, n_components=n_components) == pytest.approx(expected, abs=1e-12)


def test_pca_option_with_more_columns_than_samples():
    x, y = _task(20, 50, 2, seed=4)
    assert parc(x, y, n_components=5) == pytest.approx(_reference(x, y, 5), abs=1e-12)


def test_invariances():
    x, y = _task(50, 6, 4, seed=5)
    value = parc(x, y)
    perm = RNG.permutation(len(y))
    names = np.array(["cat", "dog", "emu", "yak"])[y]
    column_affine = x * RNG.uniform(0.1, 10.0, 6) + RNG.standard_normal(6) * 100
    assert parc(x[perm], y[perm]) == pytest.approx(value, abs=1e-12)
    assert parc(x, names) == pytest.approx(value, abs=1e-12)
    assert parc(column_affine, y) == pytest.approx(value, abs=1e-9)
    assert parc(x[:, ::-1], y) == pytest.approx(value, abs=1e-12)
    assert parc(np.ldexp(x, -600), y) == pytest.approx(value, abs=1e-12)


def test_prefers_features_that_separate_the_classes():
    informative, y = _task(60, 8, 3, shift=3.0, seed=6)
    noise = np.random.default_rng(6).standard_normal((60, 8))
    assert parc(informative, y) > 0.3 > abs(parc(noise, y))


def test_identical_features_give_zero():
    assert parc(np.ones((10, 4)), np.arange(10) % 2) == 0.0


def test_constant_sample_correlates_zero_with_the_others():
    """A sample whose standardised features are all equal: its correlations are taken as
    0 (dissimilarity 1); np.corrcoef would give NaN."""
    x, y = _task(30, 4, 3, seed=8)
    x[0] = x[1:].mean(0)  # the overall mean: standardises to the zero vector
    z = (x - x.mean(0)) / x.std(0)
    correlation = np.nan_to_num(np.corrcoef(z[1:]), nan=0.0)
    correlation = np.pad(correlation, ((1, 0), (1, 0)))
    np.fill_diagonal(correlation, 1.0)
    upper = np.triu_indices(30, 1)
    different = (y[:, None] != y[None, :])[upper]
    expected = scipy.stats.spearmanr(1 - correlation[upper], different)[0]
    assert parc(x, y) == pytest.approx(expected, abs=1e-12)


def test_degenerate_inputs_are_clean_errors():
    x, y = _task(12, 3, 3)
    with pytest.raises(ValueError, match="at least 2"):
        parc(x[:, :1], y)
    with pytest.raises(ValueError, match="single sample"):
        parc(x, np.arange(12))
    with pytest.raises(ValueError, match="n_components"):
        parc(x, y, n_components=1)


torch = pytest.importorskip("torch")
torch.set_num_threads(1)


@pytest.mark.parametrize("n_components", [None, 3])
def test_torch_agrees_with_numpy(n_components):
    x, y = _task(40, 7, 3, seed=9)
    expected = parc(x, y, n_components=n_components)
    as_torch = parc(torch.as_tensor(x), torch.as_tensor(y), n_components=n_components)
    assert type(as_torch) is float
    assert as_torch == pytest.approx(expected, abs=1e-12)
