"""LEEP against a textbook loop, NCE, and Properties 1-2 of Nguyen et al. (2020)."""

import importlib
import subprocess
import sys

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from transferlib.scores import eep_predictions, leep, nce

LEEP_MODULE = importlib.import_module("transferlib.scores.leep")


@pytest.fixture(params=["array", "compiled"])
def route(request, monkeypatch):
    """Run a test through both routes: compiled loops from 1 entry, or never."""
    smallest = 1 if request.param == "compiled" else np.iinfo(np.int64).max
    monkeypatch.setattr(LEEP_MODULE, "_COMPILED_MIN_ENTRIES", smallest)
    return request.param


def _softmax(logits):
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _problem(seed, n=240, kz=8, ky=4):
    rng = np.random.default_rng(seed)
    latent = rng.integers(0, kz, n)
    theta = _softmax(3.0 * np.eye(kz)[latent] + rng.standard_normal((n, kz)))
    y = np.where(rng.random(n) < 0.8, latent % ky, rng.integers(0, ky, n))
    return theta, y


def _textbook_leep(theta, y):
    n, kz = theta.shape
    classes = np.unique(y)
    joint = np.array([[theta[y == c, z].sum() / n for z in range(kz)] for c in classes])
    marginal = joint.sum(0)
    total = 0.0
    for i in range(n):
        c = np.searchsorted(classes, y[i])
        total += np.log(sum(joint[c, z] / marginal[z] * theta[i, z] for z in range(kz)))
    return total / n


def test_hand_computed_three_samples():
    theta = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    y = [0, 1, 0]
    # P(y,z)*3 = [[1.5, 0.5], [0.2, 0.8]], P(z)*3 = [1.7, 1.3]
    p = np.array([[1.5 / 1.7, 0.5 / 1.3], [0.2 / 1.7, 0.8 / 1.3]])
    expected = np.mean(
        np.log(
            [
                0.9 * p[0, 0] + 0.1 * p[0, 1],
                0.2 * p[1, 0] + 0.8 * p[1, 1],
                0.6 * p[0, 0] + 0.4 * p[0, 1],
            ]
        )
    )
    assert leep(theta, y) == pytest.approx(expected, abs=1e-14)


@pytest.mark.parametrize("seed", range(3))
def test_matches_textbook_loop(seed, route):
    theta, y = _problem(seed, n=60)
    assert leep(theta, y) == pytest.approx(_textbook_leep(theta, y), abs=1e-12)


def test_one_hot_source_probabilities_give_nce():
    rng = np.random.default_rng(1)
    z = rng.integers(0, 5, 100)
    y = rng.integers(0, 3, 100)
    assert leep(np.eye(5)[z], y) == pytest.approx(nce(z, y), abs=1e-12)


def test_zero_mass_source_class_contributes_nothing():
    theta, y = _problem(2)
    padded = np.concatenate([theta[:, :3], np.zeros((len(y), 2)), theta[:, 3:]], axis=1)
    value = leep(padded, y)
    assert np.isfinite(value)
    assert value == pytest.approx(leep(theta, y), abs=1e-14)
    eep = eep_predictions(padded, y)
    assert np.isfinite(eep).all()


def test_eep_predictions_are_distributions_and_give_leep():
    theta, y = _problem(3)
    eep = eep_predictions(theta, y)
    assert eep.shape == (len(y), 4)
    np.testing.assert_allclose(eep.sum(1), 1.0, atol=1e-12)
    assert leep(theta, y) == pytest.approx(np.mean(np.log(eep[np.arange(len(y)), y])))


def test_string_labels_follow_sorted_class_order():
    theta, y = _problem(4)
    names = np.array(["d", "c", "b", "a"])[y]
    assert leep(theta, names) == pytest.approx(leep(theta, y))
    np.testing.assert_allclose(eep_predictions(theta, names), eep_predictions(theta, y)[:, ::-1])


@pytest.mark.parametrize("seed", range(5))
def test_property_2_lower_bound_for_peaked_sources(seed):
    """Property 2 holds for these peaked sources; it is not a theorem for every input
    (see the next test and the leep docstring)."""
    theta, y = _problem(seed)
    z = theta.argmax(1)
    bound = nce(z, y) + np.mean(np.log(theta[np.arange(len(y)), z]))
    assert leep(theta, y) >= bound


def test_property_2_is_not_a_bound_for_every_input():
    theta = np.array([[0.5, 0.5], [0, 1], [1 / 3, 2 / 3], [0.5, 0.5], [0.5, 0.5]])
    y = np.array([0, 1, 1, 0, 0])
    z = theta.argmax(1)  # (0, 1, 1, 0, 0): Y is a function of Z, NCE = 0
    bound = nce(z, y) + np.mean(np.log(theta[np.arange(5), z]))
    # by hand: P(y|z) = ((1.5/1.8333, 1.5/3.1667), (0.3333/1.8333, 1.6667/3.1667))
    assert leep(theta, y) == pytest.approx(-0.5682038524925683, abs=1e-12)
    assert bound == pytest.approx(-0.4969813299576, abs=1e-12)


def _optimal_mixing_head(theta, y, iterations=3000):
    """Maximum-likelihood head p(y|x) = sum_z A[y, z] theta_z over column-stochastic A (EM).

    This hypothesis class contains the EEP (A = P_hat(y|z)); EM from a uniform A reaches
    the EEP after one step and never decreases the likelihood afterwards.
    """
    ky = y.max() + 1
    a = np.full((ky, theta.shape[1]), 1.0 / ky)
    for _ in range(iterations):
        resp = theta * a[y]
        resp /= resp.sum(1, keepdims=True)
        counts = np.zeros_like(a)
        np.add.at(counts, y, resp)
        a = counts / np.maximum(counts.sum(0, keepdims=True), 1e-300)
    return np.mean(np.log((theta * a[y]).sum(1)))


@pytest.mark.parametrize("seed", range(3))
def test_property_1_upper_bound_class_containing_eep(seed):
    theta, y = _problem(seed)
    assert leep(theta, y) <= _optimal_mixing_head(theta, y) + 1e-12


@pytest.mark.parametrize("seed", range(3))
def test_property_1_upper_bound_logistic_head_on_log_theta(seed):
    """The paper's practical setting: a linear head re-trained on log theta features."""
    theta, y = _problem(seed)
    features = np.log(theta)
    head = LogisticRegression(C=1e6, tol=1e-10, max_iter=10_000).fit(features, y)
    retrained = np.mean(np.log(head.predict_proba(features)[np.arange(len(y)), y]))
    assert leep(theta, y) <= retrained


def test_float32_input_is_read_as_such_and_computed_in_float64(route):
    # float32 probabilities are computed in float64 (the compiled route widens them as it
    # reads them): the result is the float64 computation on the same values, not a float32 one
    theta, y = _problem(4, n=300, kz=30, ky=6)
    theta32 = theta.astype(np.float32)
    assert leep(theta32, y) == pytest.approx(leep(theta32.astype(np.float64), y), abs=1e-13)
    np.testing.assert_allclose(
        eep_predictions(theta32, y), eep_predictions(theta32.astype(np.float64), y), atol=1e-13
    )
    bad = theta32.copy()
    bad[3, 0] = -1e-6
    with pytest.raises(ValueError, match="negative"):
        leep(bad, y)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_passes_match_numpy(dtype):
    from transferlib.scores import _compiled

    rng = np.random.default_rng(5)
    values = rng.random((37, 11)).astype(dtype)
    values[4, 2] = -0.0
    groups = rng.integers(0, 3, 37)
    bits = values.view(np.uint64 if dtype == np.float64 else np.uint32)
    sums, seen, group_sums = _compiled.row_and_group_sums(values, bits, groups, 3)
    wide = values.astype(np.float64)
    np.testing.assert_allclose(sums, wide.sum(1), rtol=1e-14)
    expected = [(wide[groups == g] / wide.sum(1)[groups == g, None]).sum(0) for g in range(3)]
    np.testing.assert_allclose(group_sums, expected, rtol=1e-13)
    assert int(seen) >> (8 * values.itemsize - 1) == 1  # the -0.0 sets the sign bit
    values[4, 2] = 0.0
    _, seen, _ = _compiled.row_and_group_sums(values, bits, groups, 3)
    assert int(seen) >> (8 * values.itemsize - 1) == 0
    table = rng.random((3, 11))
    np.testing.assert_allclose(
        _compiled.grouped_row_dots(values, groups, table), (wide * table[groups]).sum(1), rtol=1e-13
    )


def test_every_bad_entry_is_found_wherever_it_is(route):
    theta, y = _problem(6, n=50, kz=7)
    for value, message in [
        (np.nan, "NaN or inf"),
        (np.inf, "NaN or inf"),
        (-np.inf, "NaN or inf"),
        (-np.nan, "NaN or inf"),  # a NaN with its sign bit set
        (-1e-300, "negative"),
    ]:
        for row, column in [(0, 0), (49, 6), (17, 3)]:
            bad = theta.copy()
            bad[row, column] = value
            with pytest.raises(ValueError, match=message):
                leep(bad, y)
    swapped = theta.copy()  # rows that sum to 1 but hold a negative entry
    swapped[5, :2] = [1.5, -0.5]
    swapped[5, 2:] = 0.0
    with pytest.raises(ValueError, match="negative"):
        leep(swapped, y)
    signed_zero = theta.copy()
    signed_zero[:, 0] = -0.0
    signed_zero /= signed_zero.sum(1, keepdims=True)
    assert leep(signed_zero, y) == leep(np.abs(signed_zero), y)
    zero_row = theta.copy()
    zero_row[9] = 0.0
    with pytest.raises(ValueError, match="sum to 1"):
        leep(zero_row, y)
    huge = theta.copy()
    huge[9, :2] = 1e308  # finite entries whose sum overflows
    with pytest.raises(ValueError, match="a row sum overflows"):
        leep(huge, y)


def test_memory_layout_does_not_change_the_result(route):
    theta, y = _problem(7, n=80, kz=9)
    expected = leep(theta, y)
    assert leep(np.asfortranarray(theta), y) == pytest.approx(expected, abs=1e-14)
    wide = np.zeros((80, 18))
    wide[:, ::2] = theta
    assert leep(wide[:, ::2], y) == pytest.approx(expected, abs=1e-14)


def test_both_routes_agree_and_only_large_numpy_input_loads_numba(tmp_path):
    theta, y = _problem(8, n=400, kz=50, ky=7)
    np.save(tmp_path / "theta.npy", theta)
    np.save(tmp_path / "y.npy", y)
    code = (
        "import sys, numpy as np\n"
        "from transferlib.scores import leep\n"
        "theta, y = np.load(sys.argv[1]), np.load(sys.argv[2])\n"
        "small = leep(theta, y)\n"
        "assert 'numba' not in sys.modules\n"
        "large = leep(np.tile(theta, (220, 1)), np.tile(y, 220))\n"  # 4.4 million entries
        "assert 'numba' in sys.modules\n"
        "print(small, large)\n"
    )
    paths = [str(tmp_path / "theta.npy"), str(tmp_path / "y.npy")]
    result = subprocess.run(
        [sys.executable, "-c", code, *paths], check=True, capture_output=True, text=True
    )
    small, large = map(float, result.stdout.split())
    # Tiling repeats every sample, which leaves the EEP and LEEP unchanged.
    assert small == pytest.approx(_textbook_leep(theta, y), abs=1e-12)
    assert large == pytest.approx(small, abs=1e-12)
