"""Every public function of transferlib.scores, every parameter: a bad value raises a
ValueError or TypeError whose message names the parameter and the problem.

The table is checked for completeness against the signatures, so a new parameter without
a row here fails :func:`test_table_covers_every_parameter`.
"""

import inspect
import re

import numpy as np
import pytest

from transferlib import scores
from transferlib.scores import SCORES, p2l

RNG = np.random.default_rng(0)
Y = np.array([0, 1, 2] * 4)
X = RNG.standard_normal((12, 3)) + Y[:, None]
PROBS = np.full((12, 4), 0.25)
Z = np.array([0, 0, 1, 1, 2, 2] * 2)


def _with(array, index, value):
    out = np.array(array, dtype=float)
    out.flat[index] = value
    return out


def features_cases(good):
    """Bad values of a 2-D float array argument."""
    return [
        (good.astype(str), TypeError, "numeric"),
        (good + 0j, TypeError, "numeric"),
        (good[:, 0], ValueError, "2-D"),
        (good[:0], ValueError, "empty"),
        (_with(good, 4, np.nan), ValueError, "NaN or inf"),
        (_with(good, 4, -np.inf), ValueError, "NaN or inf"),
        ([[1.0, 2.0], [3.0]], ValueError, "could not be converted"),
        (good[:-1], ValueError, "length mismatch"),
    ]


def vector_cases(good, minimum_error=None):
    """Bad values of a 1-D float array argument."""
    cases = [
        (np.array(["a"] * len(good)), TypeError, "numeric"),
        (np.asarray(good)[None, :], ValueError, "1-D"),
        (np.asarray(good)[:0], ValueError, "empty"),
        (_with(good, 1, np.nan), ValueError, "NaN or inf"),
        (_with(good, 1, np.inf), ValueError, "NaN or inf"),
    ]
    return cases + ([minimum_error] if minimum_error else [])


def label_cases(good, one_class=True):
    """Bad values of a label argument."""
    cases = [
        (np.asarray(good)[:, None], ValueError, "1-D"),
        ([], ValueError, "empty"),
        (_with(good, 0, np.nan), ValueError, "NaN or inf"),
        ([0, "0"] + list(good[2:]), TypeError, "mixes label types"),
        ([None] + list(good[1:]), TypeError, "numbers, strings or bools"),
        (np.asarray(good) + 0j, TypeError, "numbers, strings or bools"),
        (np.asarray(good)[:-1], ValueError, "length mismatch"),
    ]
    if one_class:
        cases.append((np.zeros(len(good), dtype=int), ValueError, "at least 2"))
    return cases


def real_cases(*out_of_range, allow_none=False):
    cases = [("0.1", TypeError, "real number"), (True, TypeError, "real number")]
    cases += [] if allow_none else [(None, TypeError, "real number")]
    cases += [(np.nan, ValueError, "finite"), (np.inf, ValueError, "finite")]
    return cases + [(value, ValueError, "must be") for value in out_of_range]


def int_cases(*out_of_range, allow_none=False):
    cases = [(1.5, TypeError, "integer"), ("2", TypeError, "integer"), (True, TypeError, "integer")]
    cases += [] if allow_none else [(None, TypeError, "integer")]
    return cases + [(value, ValueError, "must be") for value in out_of_range]


def choice_cases():
    return [("bogus", ValueError, "must be one of"), (None, TypeError, "must be one of")]


FEATURE_SCORE_CASES = {"features": features_cases(X), "target_labels": label_cases(Y)}

TABLE = {
    "conditional_entropy": (
        scores.conditional_entropy,
        {"target_labels": Y, "source_labels": Z},
        {"target_labels": label_cases(Y, False), "source_labels": label_cases(Z, False)},
    ),
    "nce": (
        scores.nce,
        {"source_labels": Z, "target_labels": Y},
        {"source_labels": label_cases(Z, False), "target_labels": label_cases(Y)},
    ),
    "hardness": (scores.hardness, {"labels": Y}, {"labels": label_cases(Y, False)[:-1]}),
    "leep": (
        scores.leep,
        {"source_probs": PROBS, "target_labels": Y},
        {
            "source_probs": features_cases(PROBS)
            + [
                (
                    _with(PROBS, 0, -0.25) + _with(np.zeros_like(PROBS), 1, 0.5),
                    ValueError,
                    "negative",
                ),
                (PROBS * 2, ValueError, "sum to 1"),
                (RNG.standard_normal(PROBS.shape), ValueError, "negative|sum to 1"),
            ],
            "target_labels": label_cases(Y),
            "atol": real_cases(-1e-3, 1.0, allow_none=True),
        },
    ),
    "h_score": (
        scores.h_score,
        {"features": X, "target_labels": Y},
        {**FEATURE_SCORE_CASES, "rtol": real_cases(-1e-9, 1.0, allow_none=True)},
    ),
    "shrinkage_h_score": (
        scores.shrinkage_h_score,
        {"features": X, "target_labels": Y},
        {**FEATURE_SCORE_CASES, "rtol": real_cases(-1e-9, 1.0, allow_none=True)},
    ),
    "h_score_transferability": (
        scores.h_score_transferability,
        {"features": X, "target_labels": Y, "input_codes": np.arange(12) % 6},
        {
            **FEATURE_SCORE_CASES,
            "input_codes": label_cases(np.arange(12) % 6, False)
            + [(np.zeros(12), ValueError, "single value")],
            "method": choice_cases(),
            "rtol": real_cases(-1e-9, 1.0, allow_none=True),
        },
    ),
    "hgr_maximal_correlation": (
        scores.hgr_maximal_correlation,
        {"x_codes": np.arange(12) % 6, "y_codes": Y},
        {
            "x_codes": label_cases(np.arange(12) % 6),
            "y_codes": label_cases(Y),
            "k": int_cases(0, 3),
            "method": choice_cases(),
            "return_functions": [(1, TypeError, "True or False"), ("yes", TypeError, "True")],
            "max_iter": int_cases(0),
            "tol": real_cases(-1.0),
            "seed": int_cases(-1),
        },
    ),
    "logme": (
        scores.logme,
        {"features": X, "target_labels": Y},
        {
            **FEATURE_SCORE_CASES,
            "gram": choice_cases(),
            "rtol": real_cases(-1e-9, 1.0, allow_none=True),
            "max_iter": int_cases(0, -5),
            "tol": real_cases(-1.0),
        },
    ),
    "nleep": (
        scores.nleep,
        {"features": X, "target_labels": Y, "components_per_class": 1},
        {
            **FEATURE_SCORE_CASES,
            "components_per_class": int_cases(0)
            + [(5, ValueError, "mixture components need at least")],
            "variance": real_cases(0.0, 1.5),
            "covariance_type": choice_cases(),
            "seed": int_cases(-1, 2**32),
            "max_iter": int_cases(0),
        },
    ),
    "gbc": (
        scores.gbc,
        {"features": X, "target_labels": Y},
        {
            **FEATURE_SCORE_CASES,
            "target_labels": label_cases(Y) + [(np.arange(12) % 7, ValueError, "one sample")],
            "gaussian": choice_cases(),
            "var_floor": real_cases(-1e-8),
        },
    ),
    "transrate": (
        scores.transrate,
        {"features": X, "target_labels": Y},
        {**FEATURE_SCORE_CASES, "eps": real_cases(0.0, -1.0)},
    ),
    "eep_predictions": (
        scores.eep_predictions,
        {"source_probs": PROBS, "target_labels": Y},
        {
            "source_probs": features_cases(PROBS) + [(PROBS * 2, ValueError, "sum to 1")],
            "target_labels": label_cases(Y),
            "atol": real_cases(-1e-3, 1.5, allow_none=True),
        },
    ),
    "p2l.dataset_embedding": (
        p2l.dataset_embedding,
        {"features": np.abs(X)},
        {
            "features": features_cases(np.abs(X))[:-1]
            + [(-np.abs(X), ValueError, "non-negative"), (0 * X, ValueError, "all zero")],
            "eps": real_cases(-1e-10),
        },
    ),
    "p2l.divergence": (
        p2l.divergence,
        {"p": np.array([0.5, 0.5]), "q": np.array([[0.25, 0.75], [0.5, 0.5]])},
        {
            "p": vector_cases(np.array([0.5, 0.5]))
            + [
                (np.array([0.5, 0.6]), ValueError, "sum to 1"),
                (np.array([1.5, -0.5]), ValueError, "negative"),
                (np.array([0.2, 0.3, 0.5]), ValueError, "dimension mismatch"),
            ],
            "q": [
                (np.zeros((1, 1, 2)), ValueError, "1-D or 2-D"),
                (np.array([[1.0, 0.0]]), ValueError, "zeros where p > 0"),
                (np.array([[np.nan, 1.0]]), ValueError, "NaN or inf"),
            ],
            "metric": choice_cases(),
        },
    ),
    "p2l.embedding_divergence": (
        p2l.embedding_divergence,
        {"source_sizes": [10, 20, 30], "divergences": [0.1, 0.2, 0.4], "k": -1.0},
        {
            "source_sizes": [
                (["a", "b", "c"], TypeError, "numeric"),
                (np.ones((1, 1, 3)), ValueError, "1-D or 2-D"),
                ([10, np.nan, 30], ValueError, "NaN or inf"),
                ([10, 0, 30], ValueError, "positive"),
                ([10, 20], ValueError, "shape mismatch"),
                ([[10, 20, 30]] * 2, ValueError, "shape mismatch"),
            ],
            "divergences": [
                (["a", "b", "c"], TypeError, "numeric"),
                ([], ValueError, "empty"),
                ([0.1, np.inf, 0.3], ValueError, "NaN or inf"),
                ([0.1], ValueError, "shape mismatch"),
            ],
            "k": real_cases() + [(1.5e308, ValueError, "overflows")],
        },
    ),
    "p2l.fit_k": (
        p2l.fit_k,
        {
            "source_sizes": [10, 20, 30],
            "divergences": np.array([[0.1, 0.5, 0.2], [0.3, 0.1, 0.2]]),
            "improvements": np.array([[1.0, 2.0, 3.0], [3.0, 1.0, 2.0]]),
        },
        {
            "source_sizes": [
                ([10, 20], ValueError, "shape mismatch"),
                ([10, -20, 30], ValueError, "positive"),
            ],
            "divergences": [
                (np.ones(3), ValueError, "2-D"),
                (np.full((2, 3), np.nan), ValueError, "NaN or inf"),
            ],
            "improvements": [
                (np.ones((3, 3)), ValueError, "shape mismatch"),
                (np.array([["a"] * 3] * 2), TypeError, "numeric"),
            ],
            "k_grid": [
                ([], ValueError, "empty"),
                ([np.inf], ValueError, "NaN or inf"),
                ([[1.0]], ValueError, "1-D"),
            ],
            "top": int_cases(1, 4),
        },
    ),
}


def _compute(**kwargs):
    return SCORES["logme"].compute(**kwargs)


TABLE["ScoreInfo.compute"] = (
    _compute,
    {"features": X, "target_labels": Y},
    {
        "features": [(None, TypeError, "needs features")],
        "target_labels": [(None, TypeError, "numbers, strings or bools|1-D")],
        "source_probs": [],
        "source_labels": [],
    },
)

CASES = [
    pytest.param(name, param, value, error, match, id=f"{name}-{param}-{i}")
    for name, (_, _, params) in TABLE.items()
    for param, cases in params.items()
    for i, (value, error, match) in enumerate(cases)
]


@pytest.mark.parametrize("name", sorted(TABLE))
def test_valid_call_returns_a_finite_result(name):
    function, valid, _ = TABLE[name]
    result = function(**valid)
    values = np.concatenate([np.ravel(getattr(result, "mean_spearman", result))])
    assert np.isfinite(values.astype(float)).all()


@pytest.mark.parametrize("name,param,value,error,match", CASES)
def test_bad_value_is_named_in_a_clean_error(name, param, value, error, match):
    function, valid, _ = TABLE[name]
    with pytest.raises(error) as caught:
        function(**{**valid, param: value})
    message = str(caught.value)
    assert re.search(match, message), message
    # the message names the argument (the compute row reports the score's own names)
    names = {param} | ({"features", "target_labels"} if name == "ScoreInfo.compute" else set())
    names |= {"length mismatch", "shape mismatch", "dimension mismatch", "zeros where"}
    assert any(n in message for n in names), message


def _public_callables():
    functions = {name: getattr(scores, name) for name in scores.__all__}
    functions.pop("SCORES"), functions.pop("ScoreInfo"), functions.pop("p2l")
    functions.update({f"p2l.{name}": getattr(p2l, name) for name in p2l.__all__})
    functions.pop("p2l.METRICS"), functions.pop("p2l.KFit")
    functions["ScoreInfo.compute"] = scores.ScoreInfo.compute
    return functions


def test_table_covers_every_parameter():
    for name, function in _public_callables().items():
        assert name in TABLE, f"{name} has no row"
        expected = set(inspect.signature(function).parameters) - {"self", "kwargs"}
        assert set(TABLE[name][2]) == expected, name
