"""Log-likelihoods of Tran et al.'s Theorem 1 and the constructed head k-bar."""

import numpy as np
import pytest

from transferlib.evaluation import kbar_accuracy, log_likelihood, mixture_log_likelihood
from transferlib.scores import conditional_entropy


def test_log_likelihood_by_hand():
    probs = np.array([[0.5, 0.5], [0.2, 0.8], [0.9, 0.1]])
    expected = (np.log(0.5) + np.log(0.8) + np.log(0.9)) / 3
    assert log_likelihood(probs, np.array([0, 1, 0])) == pytest.approx(expected)


def test_mixture_log_likelihood_by_hand():
    # z = (0, 0, 1, 1), y = (0, 1, 1, 1): P(y|z=0) = (1/2, 1/2), P(y|z=1) = (0, 1).
    probs = np.array([[1.0, 0.0], [0.5, 0.5], [0.25, 0.75], [0.0, 1.0]])
    z = np.array([0, 0, 1, 1])
    y = np.array([0, 1, 1, 1])
    p_y = np.array([0.5, 0.5 * 0.5 + 0.5 * 1.0, 0.25 * 0.5 + 0.75, 1.0])
    assert mixture_log_likelihood(probs, z, y) == pytest.approx(np.mean(np.log(p_y)))


@pytest.mark.parametrize("seed", range(5))
def test_constructed_head_satisfies_theorem_for_any_network(seed):
    rng = np.random.default_rng(seed)
    n, kz, ky = 400, 6, 3
    z = rng.integers(0, kz, size=n)
    y = np.where(rng.random(n) < 0.6, z % ky, rng.integers(0, ky, size=n))
    logits = rng.normal(scale=3.0, size=(n, kz))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    bound = log_likelihood(probs, z) - conditional_entropy(target_labels=y, source_labels=z)
    assert mixture_log_likelihood(probs, z, y) >= bound - 1e-12


def test_perfect_source_attains_minus_conditional_entropy():
    rng = np.random.default_rng(0)
    z = rng.integers(0, 4, size=200)
    y = rng.integers(0, 3, size=200)
    probs = np.eye(4)[z]
    assert mixture_log_likelihood(probs, z, y) == pytest.approx(
        -conditional_entropy(target_labels=y, source_labels=z)
    )


def test_kbar_reads_any_function_of_the_source_label():
    rng = np.random.default_rng(0)
    z_train, z_test = rng.integers(0, 6, 300), rng.integers(0, 6, 100)
    union = np.isin(np.arange(6), [0, 3, 4]).astype(np.int64)  # an arbitrary union of classes
    perfect = np.eye(6)[z_test]
    assert kbar_accuracy(z_train, union[z_train], perfect, union[z_test]) == 1.0
    # a source that knows nothing predicts the training majority for every image
    flat = np.full((100, 6), 1 / 6)
    y_train, y_test = rng.integers(0, 2, 300), rng.integers(0, 2, 100)
    majority = np.bincount(y_train).argmax()
    assert kbar_accuracy(z_train, y_train, flat, y_test) == np.mean(y_test == majority)
    with pytest.raises(ValueError, match="length mismatch"):
        kbar_accuracy(z_train, y_train[:-1], flat, y_test)


def test_likelihood_input_validation():
    probs = np.full((3, 2), 0.5)
    with pytest.raises(ValueError, match="length mismatch"):
        log_likelihood(probs, np.array([0, 1]))
    with pytest.raises(TypeError, match="integer"):
        log_likelihood(probs, np.array([0.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match="lie in"):
        mixture_log_likelihood(probs, np.array([0, 1, 2]), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="length mismatch"):
        mixture_log_likelihood(probs, np.array([0, 1, 1]), np.array([0, 1]))
    with pytest.raises(ValueError, match="NaN"):
        log_likelihood(np.array([[np.nan, 1.0]]), np.array([0]))


def test_probabilities_must_be_distributions_and_codes_index_columns():
    probs = np.array([[0.2, 0.8], [0.6, 0.4]])
    with pytest.raises(ValueError, match="logits"):
        log_likelihood(probs * 3, np.array([0, 1]))
    with pytest.raises(ValueError, match="labels must lie in"):
        log_likelihood(probs, np.array([0, 2]))
    with pytest.raises(ValueError, match="length mismatch"):
        mixture_log_likelihood(probs, np.array([0, 1]), np.array(["a", "b", "a"]))
