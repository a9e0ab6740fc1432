"""Every bad input raises a ValueError/TypeError that names the problem."""

import numpy as np
import pytest

from transferlib.scores import SCORES, conditional_entropy, eep_predictions, leep, nce

RNG = np.random.default_rng(0)
Y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2])
FEATURES = RNG.standard_normal((12, 3)) + Y[:, None]
PROBS = np.full((12, 4), 0.25)
FEATURE_SCORES = [name for name, info in SCORES.items() if info.needs == "features"]
KWARGS = {"nleep": {"components_per_class": 1}}


def _call(name, features=FEATURES, labels=Y):
    return SCORES[name].compute(labels, features=features, **KWARGS.get(name, {}))


@pytest.mark.parametrize("name", FEATURE_SCORES)
class TestFeatureScores:
    def test_valid_input_gives_a_float(self, name):
        value = _call(name)
        assert type(value) is float and np.isfinite(value)

    def test_list_input(self, name):
        assert _call(name, FEATURES.tolist(), Y.tolist()) == pytest.approx(_call(name))

    def test_string_labels(self, name):
        assert _call(name, labels=np.array(["x", "y", "z"])[Y]) == pytest.approx(_call(name))

    def test_length_mismatch(self, name):
        with pytest.raises(ValueError, match="length mismatch"):
            _call(name, FEATURES[:-1])

    def test_empty(self, name):
        with pytest.raises(ValueError, match="empty"):
            _call(name, np.zeros((0, 3)), np.array([], dtype=int))

    @pytest.mark.parametrize("bad", [np.nan, np.inf])
    def test_non_finite_features(self, name, bad):
        features = FEATURES.copy()
        features[3, 1] = bad
        with pytest.raises(ValueError, match="NaN or inf"):
            _call(name, features)

    def test_nan_labels(self, name):
        with pytest.raises(ValueError, match="NaN"):
            _call(name, labels=np.where(Y == 0, np.nan, Y))

    def test_one_class(self, name):
        with pytest.raises(ValueError, match="at least 2"):
            _call(name, labels=np.zeros(12, dtype=int))

    def test_wrong_ndim(self, name):
        with pytest.raises(ValueError, match="2-D"):
            _call(name, FEATURES[:, 0])
        with pytest.raises(ValueError, match="1-D"):
            _call(name, labels=Y[:, None])

    def test_non_numeric_features(self, name):
        with pytest.raises(TypeError, match="numeric"):
            _call(name, FEATURES.astype(str))


@pytest.mark.parametrize("function", [leep, eep_predictions])
class TestProbabilityScores:
    def test_negative_entries(self, function):
        probs = PROBS.copy()
        probs[0] = [1.5, -0.5, 0, 0]
        with pytest.raises(ValueError, match="negative"):
            function(probs, Y)

    def test_rows_must_sum_to_one(self, function):
        with pytest.raises(ValueError, match="sum to 1"):
            function(PROBS * 2, Y)

    def test_logits_rejected(self, function):
        with pytest.raises(ValueError):
            function(RNG.standard_normal((12, 4)), Y)

    def test_shape_and_length(self, function):
        with pytest.raises(ValueError, match="2-D"):
            function(PROBS[0], Y)
        with pytest.raises(ValueError, match="length mismatch"):
            function(PROBS, Y[:-1])
        with pytest.raises(ValueError, match="NaN"):
            function(np.full((12, 4), np.nan), Y)
        with pytest.raises(ValueError, match="at least 2"):
            function(PROBS, np.ones(12))
        with pytest.raises(ValueError, match="empty"):
            function(np.zeros((0, 4)), [])


def test_label_scores_bad_inputs():
    with pytest.raises(ValueError, match="length mismatch"):
        conditional_entropy([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="empty"):
        nce([], [])
    with pytest.raises(ValueError, match="at least 2"):
        nce([1, 1, 1], [0, 1, 0])
    with pytest.raises(ValueError, match="1-D"):
        nce([[0, 1]], [[0, 1]])
    with pytest.raises(ValueError, match="NaN"):
        nce([0.0, np.nan], [0, 1])
    with pytest.raises(ValueError, match="None"):
        nce(np.array(["a", None], dtype=object), [0, 1])


def test_registry_entries():
    for name, info in SCORES.items():
        assert info.name == name and info.higher_is_better and info.reference
    with pytest.raises(TypeError, match="source_probs"):
        SCORES["leep"].compute(Y, features=FEATURES)
    assert SCORES["leep"].compute(Y, source_probs=PROBS) == pytest.approx(leep(PROBS, Y))
    assert SCORES["nce"].compute(Y, source_labels=Y % 2) == pytest.approx(nce(Y, Y % 2))


def test_gbc_and_transrate_specific_checks():
    from transferlib.scores import gbc, transrate

    with pytest.raises(ValueError, match="gaussian"):
        gbc(FEATURES, Y, gaussian="full")
    with pytest.raises(ValueError, match="at least two per class"):
        gbc(FEATURES[:4], Y[:4])
    with pytest.raises(ValueError, match="eps"):
        transrate(FEATURES, Y, eps=0)
