"""NCE, conditional entropy and hardness against hand-computed values and Tran et al. Thm 1."""

from collections import Counter

import numpy as np
import pytest

from transferlib.scores import conditional_entropy, hardness, nce


def _h(y, z):
    return conditional_entropy(target_labels=y, source_labels=z)


def test_conditional_entropy_hand_computed():
    # joint: (0,a)=2/6, (1,a)=1/6, (0,b)=1/6, (1,b)=2/6; P(a)=P(b)=1/2
    y = [0, 0, 1, 1, 1, 0]
    z = ["a", "a", "a", "b", "b", "b"]
    expected = -(2 / 3 * np.log(2 / 3) + 1 / 3 * np.log(1 / 3))
    assert _h(y, z) == pytest.approx(expected, abs=1e-15)
    assert nce(z, y) == pytest.approx(-expected, abs=1e-15)


def test_conditional_entropy_unequal_source_masses():
    # Z = a on 4 inputs with Y = (0,0,0,1); Z = b on 2 inputs with Y = (1,1)
    y = [0, 0, 0, 1, 1, 1]
    z = [7, 7, 7, 7, 9, 9]
    h_given_a = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    assert _h(y, z) == pytest.approx(4 / 6 * h_given_a, abs=1e-15)


def test_argument_order_is_source_then_target():
    """The two orders give different numbers here, so a swapped call cannot pass."""
    z = [0, 0, 1, 1, 2, 2]  # source determines target: NCE(Y|Z) = 0
    y = [0, 0, 0, 0, 1, 1]
    assert nce(z, y) == 0.0
    assert nce(y, z) < -0.4  # H(Z|Y) = (4/6) log 2 > 0
    with pytest.raises(TypeError):
        conditional_entropy(y, z)  # keyword-only: H(Y|Z) cannot be swapped by accident


def test_deterministic_mapping_gives_positive_zero():
    z = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    y = np.array(["even", "odd"])[z % 2]  # Y is a function of Z
    assert _h(y, z) == 0.0 and nce(z, y) == 0.0
    # Exactly +0.0, so tables and glued text never print "-0.0".
    assert np.copysign(1.0, _h(y, z)) == 1.0
    assert np.copysign(1.0, nce(z, y)) == 1.0
    assert np.copysign(1.0, hardness(np.zeros(5))) == 1.0


def test_independent_labels_give_target_entropy():
    y = np.repeat([0, 1, 2], 4)  # H(Y) = log 3
    z = np.tile([10, 20, 30, 40], 3)  # every (y, z) pair exactly once
    assert _h(y, z) == pytest.approx(np.log(3), abs=1e-14)
    assert _h(y, z) == pytest.approx(hardness(y), abs=1e-14)


def test_hardness_is_label_entropy():
    assert hardness(["cat", "dog", "dog", "dog"]) == pytest.approx(
        -(0.25 * np.log(0.25) + 0.75 * np.log(0.75))
    )
    assert hardness([5, 5, 5]) == 0.0  # a trivial task is not hard
    assert hardness(np.arange(8)) == pytest.approx(np.log(8))


def _counter_entropy(y, z):
    """H(Y|Z) from Python dictionaries, independent of the array code under test."""
    joint, source = Counter(zip(y, z)), Counter(z)
    return -sum(c / len(y) * np.log(c / source[b]) for (_, b), c in joint.items())


@pytest.mark.parametrize("distinct", [3, 250])
def test_dense_and_sparse_counting_paths(distinct):
    """Few distinct labels use a dense table, many (|Y||Z| > 4n) count occurring cells."""
    rng = np.random.default_rng(distinct)
    z = rng.integers(0, distinct, 300) * 10**6  # large, sparse label values
    y = (z // 10**6 + rng.integers(0, 3, 300)) % distinct
    assert _h(y, z) == pytest.approx(_counter_entropy(y.tolist(), z.tolist()), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_tran_theorem_1(seed):
    """l_Y(w_Z, k_bar) >= l_Z(w_Z, h_Z) - H(Y|Z) for the classifier k_bar of eq. 9.

    theta plays the source model's softmax, z the source training labels, and k_bar maps
    theta to sum_z P_hat(y|z) theta_z with P_hat from the label sequences (eq. 6-9).
    """
    rng = np.random.default_rng(seed)
    n, kz, ky = 300, 6, 3
    z = rng.integers(0, kz, n)
    y = (z + (rng.random(n) < 0.3) * rng.integers(1, ky, n)) % ky
    logits = 2.5 * np.eye(kz)[z] + rng.standard_normal((n, kz))
    theta = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    counts = np.zeros((ky, kz))
    np.add.at(counts, (y, z), 1.0)
    p_y_given_z = counts / counts.sum(0, keepdims=True)
    l_y = np.mean(np.log((theta * p_y_given_z[y]).sum(1)))
    l_z = np.mean(np.log(theta[np.arange(n), z]))
    assert l_y >= l_z - _h(y, z)
