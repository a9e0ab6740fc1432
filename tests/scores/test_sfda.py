"""SFDA (Shao et al. 2022): a hand-computed case, an independent re-implementation that
solves the generalised Fisher eigenproblem, the adaptive shrinkage, invariances,
degenerate input and the two backends."""

import math

import numpy as np
import pytest
from scipy import linalg
from scipy.special import expit

from transferlib.scores import sfda

RNG = np.random.default_rng(11)


def _fisher_posteriors(x, y, shrinkage):
    """Posteriors in the Fisher space of all generalised eigenvectors of
    (S_B, Sigma_lambda), as the authors' code computes them; and lambda."""
    n, d = x.shape
    k = y.max() + 1
    priors = np.bincount(y) / n
    means = np.stack([x[y == c].mean(0) for c in range(k)])
    within = sum(priors[c] * np.cov(x[y == c].T, bias=True).reshape(d, d) for c in range(k))
    if shrinkage is None:
        shrinkage = max(math.exp(-5 * np.linalg.eigvalsh(within).max()), 1e-10)

    def shrunk(s):
        return (1 - shrinkage) * s + shrinkage * np.trace(s) / d * np.eye(d)

    total = np.cov(x.T, bias=True).reshape(d, d)
    _, vectors = linalg.eigh(shrunk(total) - shrunk(within), shrunk(within))
    projected_means = means @ vectors
    logits = (x @ vectors) @ projected_means.T - 0.5 * (projected_means**2).sum(1)
    logits += np.log(priors)
    p = np.exp(logits - logits.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True), means, shrinkage


def _reference(x, y, shrinkage=None):
    """(mean log-posterior, mean posterior) of the true class after ConfMix."""
    n, k = len(y), y.max() + 1
    p, means, shrinkage = _fisher_posteriors(x, y, shrinkage)
    softened = np.exp(p) / np.exp(p).sum(1, keepdims=True)
    w = softened[np.arange(n), y][:, None]
    others = (means.sum(0) - means) / (k - 1)
    p, _, _ = _fisher_posteriors(w * x + (1 - w) * others[y], y, shrinkage)
    true = p[np.arange(n), y]
    return np.log(true).mean(), true.mean()


def _task(n=60, d=5, k=3, shift=1.0, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    return scale * (rng.standard_normal((n, d)) + shift * rng.standard_normal((k, d))[y]), y


def test_hand_computed_one_dimensional_case():
    """d = 1, two balanced classes: Sigma_lambda = S_W whatever lambda, and
    p(1 | x) = sigmoid((mu_1 - mu_0) (x - (mu_0 + mu_1) / 2) / S_W)."""
    x = np.array([0.0, 2.0, 3.0, 5.0])
    y = np.array([0, 0, 1, 1])

    def posterior_of_class_one(values):
        mu0, mu1 = values[:2].mean(), values[2:].mean()
        within = (((values[:2] - mu0) ** 2).sum() + ((values[2:] - mu1) ** 2).sum()) / 4
        return expit((mu1 - mu0) * (values - (mu0 + mu1) / 2) / within)

    p1 = posterior_of_class_one(x)  # 1 / (1 + e^{-3 (x - 2.5)})
    true = np.where(y == 1, p1, 1 - p1)
    w = expit(2 * true - 1)  # softmax of (p, 1 - p) at the true class
    others = np.where(y == 0, 4.0, 1.0)  # the other class's mean
    q1 = posterior_of_class_one(w * x + (1 - w) * others)
    true = np.where(y == 1, q1, 1 - q1)
    assert sfda(x[:, None], y) == pytest.approx(np.log(true).mean(), rel=1e-12)
    assert sfda(x[:, None], y, average="probability") == pytest.approx(true.mean(), rel=1e-12)


@pytest.mark.parametrize(
    "n,d,k,scale", [(60, 4, 3, 1.0), (100, 7, 5, 0.1), (90, 12, 3, 0.3), (40, 60, 4, 1.0)]
)
def test_matches_fisher_space_reimplementation(n, d, k, scale):
    """Includes d > n (singular S_W, lambda at its floor) and small scales where the
    adaptive lambda is far from its floor."""
    x, y = _task(n, d, k, scale=scale, seed=n + d)
    log_score, probability = _reference(x, y)
    assert sfda(x, y) == pytest.approx(log_score, rel=1e-7, abs=1e-9)
    assert sfda(x, y, average="probability") == pytest.approx(probability, rel=1e-7)


@pytest.mark.parametrize("shrinkage", [0.0, 0.3, 1.0])
def test_fixed_shrinkage_matches_reimplementation(shrinkage):
    x, y = _task(80, 6, 4, seed=2)
    assert sfda(x, y, shrinkage=shrinkage) == pytest.approx(
        _reference(x, y, shrinkage)[0], rel=1e-8
    )


def test_adaptive_shrinkage_follows_the_feature_scale():
    """lambda = exp(-5 sigma_max(S_W)): about 1 for tiny features, the floor 1e-10 for
    large ones, at any magnitude (exact powers of two reach 1e-180 and 1e180)."""
    x, y = _task(50, 5, 3, seed=4)
    nearest_mean = sfda(x, y, shrinkage=1.0)
    floor = sfda(x, y, shrinkage=1e-10)
    assert nearest_mean != pytest.approx(floor, rel=1e-3)
    assert sfda(x * 1e-7, y) == pytest.approx(nearest_mean, rel=1e-9)
    assert sfda(np.ldexp(x, -600), y) == pytest.approx(nearest_mean, rel=1e-12)
    assert sfda(x * 1e3, y) == pytest.approx(floor, rel=1e-12)
    assert sfda(np.ldexp(x, 600), y) == pytest.approx(floor, rel=1e-12)


def test_invariances():
    x, y = _task(45, 6, 3, seed=5)
    value = sfda(x, y)
    perm = RNG.permutation(len(y))
    assert sfda(x[perm], y[perm]) == pytest.approx(value, rel=1e-10)
    assert sfda(x, np.array(["b", "c", "a"])[y]) == pytest.approx(value, rel=1e-10)
    fixed = sfda(x, y, shrinkage=0.2)
    assert sfda(x * 37.0, y, shrinkage=0.2) == pytest.approx(fixed, rel=1e-10)


def test_singular_within_scatter_with_as_many_samples_as_dimensions():
    """4 samples in 4 dimensions (d = n, where the smaller Gram matrix is the samples'),
    two classes: S_W has rank 2. The value must not depend on the row order (a version
    that took the n x n Gram matrix for S_W gave -9013, -10486 and -226)."""
    x = np.array(
        [
            [0.12573022, -0.13210486, 0.64042265, 0.10490012],
            [-0.53566937, 0.36159505, 1.30400005, 0.94708096],
            [-0.70373524, -1.26542147, -0.62327446, 0.04132598],
            [-2.32503077, -0.21879166, -1.24591095, -0.73226735],
        ]
    )
    y = np.array([0, 1, 0, 1])
    values = [sfda(x[perm], y[perm]) for perm in ([0, 1, 2, 3], [3, 1, 0, 2], [2, 3, 1, 0])]
    assert np.isfinite(values).all()
    np.testing.assert_allclose(values, values[0], rtol=1e-7)


def test_ranges_and_separable_features():
    x, y = _task(30, 5, 3, seed=6)
    assert sfda(x, y) <= 0 and 0 <= sfda(x, y, average="probability") <= 1
    separable, labels = _task(20, 40, 2, shift=5.0, seed=6)  # d > n: linearly separable
    assert sfda(separable, labels) == pytest.approx(0.0, abs=1e-9)
    assert sfda(separable, labels, average="probability") == pytest.approx(1.0, abs=1e-9)


def test_prefers_features_that_separate_the_classes():
    y = np.arange(90) % 3
    noise = np.random.default_rng(7).standard_normal((90, 6))
    centres = np.random.default_rng(8).standard_normal((3, 6))
    assert sfda(noise + 2 * centres[y], y) > sfda(noise + 0.5 * centres[y], y) > sfda(noise, y)


def test_degenerate_inputs_are_clean_errors():
    y = np.arange(12) % 3
    with pytest.raises(ValueError, match="single point"):
        sfda(np.repeat(y[:, None], 4, axis=1).astype(float), y)
    x, labels = _task(10, 20, 2, seed=9)
    with pytest.raises(ValueError, match="singular"):
        sfda(x, labels, shrinkage=0.0)


torch = pytest.importorskip("torch")
torch.set_num_threads(1)


@pytest.mark.parametrize("average", ["log", "probability"])
def test_torch_agrees_with_numpy(average):
    x, y = _task(40, 30, 3, scale=0.2, seed=10)
    expected = sfda(x, y, average=average)
    as_torch = sfda(torch.as_tensor(x), torch.as_tensor(y), average=average)
    assert type(as_torch) is float
    assert as_torch == pytest.approx(expected, rel=1e-9)
