"""Every public function of transferlib.evaluation, every parameter: a bad value raises a
ValueError or TypeError whose message names the parameter and the problem."""

import inspect
import re

import numpy as np
import pytest

from transferlib import evaluation
from transferlib.evaluation import LinearFit, linear_fit_with_ci

S = np.array([0.9, 0.1, 0.5, 0.7])
M = np.array([0.6, 0.8, 0.7, 0.5])


def vector_cases(good, name):
    cases = [
        (np.array(["a"] * len(good)), TypeError, f"{name} must be a real numeric"),
        (None, TypeError, f"{name} must be a real numeric"),
        (np.asarray(good)[None, :], ValueError, f"{name} must be 1-D"),
        ([], ValueError, f"{name} is empty"),
        (np.r_[good[:-1], np.nan], ValueError, f"{name} contains NaN or inf"),
        (np.r_[good[:-1], -np.inf], ValueError, f"{name} contains NaN or inf"),
        (np.asarray(good)[:-1], ValueError, f"length mismatch: .*{name}"),
    ]
    return cases


def int_cases(name, *out_of_range, allow_none=False):
    cases = [(1.5, TypeError, f"{name} must be an integer"), ("2", TypeError, "integer")]
    cases += [(True, TypeError, f"{name} must be an integer")]
    cases += [] if allow_none else [(None, TypeError, "integer")]
    return cases + [(v, ValueError, f"{name} must be") for v in out_of_range]


def real_cases(name, *out_of_range):
    cases = [(None, TypeError, f"{name} must be a real"), ("0.9", TypeError, "real number")]
    cases += [(np.nan, ValueError, f"{name} must be finite")]
    return cases + [(v, ValueError, f"{name} must be") for v in out_of_range]


P = np.array([[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
Z = np.array([0, 1, 1])
Y = np.array([1, 0, 1])


def prob_cases(name):
    return [
        (np.array([["a", "b"]] * 3), TypeError, f"{name} must be a real numeric"),
        (None, TypeError, f"{name} must be a real numeric"),
        (P[0], ValueError, f"{name} must be 2-D"),
        (P * 3, ValueError, f"{name} rows must sum to 1 .*not logits"),
        (np.r_[P[:2], [[np.nan, 1.0]]], ValueError, f"{name} contains NaN or inf"),
        (P[:2], ValueError, f"length mismatch: .*{name}"),
    ]


def code_cases(name, length_mismatch=True):
    cases = [
        (Z.astype(float), TypeError, f"{name} must be integer class codes"),
        (None, TypeError, f"{name} must be integer class codes, got None"),
        (Z[None], ValueError, f"{name} must be a non-empty 1-D"),
        (np.array([], dtype=int), ValueError, f"{name} must be a non-empty 1-D"),
    ]
    return cases + ([(Z[:2], ValueError, f"length mismatch: .*{name}")] if length_mismatch else [])


CORRELATION = {
    "x": vector_cases(S, "x") + [([1, 1, 1, 1], ValueError, "x is constant")],
    "y": vector_cases(M, "y") + [([2, 2, 2, 2], ValueError, "y is constant")],
}
FIT = linear_fit_with_ci(S, M)

TABLE = {
    "log_likelihood": (
        evaluation.log_likelihood,
        {"probs": P, "labels": Z},
        {
            "probs": prob_cases("probs"),
            "labels": code_cases("labels") + [([0, 2, 1], ValueError, "labels must lie in")],
        },
    ),
    "mixture_log_likelihood": (
        evaluation.mixture_log_likelihood,
        {"source_probs": P, "source_labels": Z, "target_labels": Y},
        {
            "source_probs": prob_cases("source_probs"),
            "source_labels": code_cases("source_labels")
            + [([0, 2, 1], ValueError, "source_labels must lie in")],
            "target_labels": [
                (np.array([1, "a", 0], dtype=object), TypeError, "target_labels mixes"),
                (None, TypeError, "target_labels must be a sequence"),
                (Y[None], ValueError, "target_labels must be 1-D"),
                (Y[:2], ValueError, "length mismatch: .*target_labels"),
            ],
        },
    ),
    "kbar_accuracy": (
        evaluation.kbar_accuracy,
        {
            "train_source_labels": Z,
            "train_target_labels": Y,
            "test_source_probs": P,
            "test_target_labels": Y,
        },
        {
            "train_source_labels": code_cases("train_source_labels")
            + [([0, 2, 1], ValueError, "train_source_labels must lie in")],
            "train_target_labels": code_cases("train_target_labels"),
            "test_source_probs": prob_cases("test_source_probs"),
            "test_target_labels": code_cases("test_target_labels"),
        },
    ),
    "pearson": (evaluation.pearson, {"x": S, "y": M}, CORRELATION),
    "spearman": (evaluation.spearman, {"x": S, "y": M}, CORRELATION),
    "kendall": (evaluation.kendall, {"x": S, "y": M}, CORRELATION),
    "weighted_kendall": (evaluation.weighted_kendall, {"x": S, "y": M}, CORRELATION),
    "transferability_levels": (
        evaluation.transferability_levels,
        {"scores": S, "metric": M},
        {
            "scores": vector_cases(S, "scores") + [([0.5] * 4, ValueError, "all equal")],
            "metric": vector_cases(M, "metric"),
            "n_levels": int_cases("n_levels", 0, -3),
        },
    ),
    "relative_top_k_accuracy": (
        evaluation.relative_top_k_accuracy,
        {"scores": S, "metric": M},
        {
            "scores": vector_cases(S, "scores"),
            "metric": vector_cases(M, "metric") + [(M - 1, ValueError, "metric must be positive")],
            "k": int_cases("k", 0, 5),
        },
    ),
    "top_k_regret": (
        evaluation.top_k_regret,
        {"scores": S, "metric": M},
        {
            "scores": vector_cases(S, "scores"),
            "metric": vector_cases(M, "metric"),
            "k": int_cases("k", 0, 5),
        },
    ),
    "best_in_top_k": (
        evaluation.best_in_top_k,
        {"scores": S, "metric": M},
        {
            "scores": vector_cases(S, "scores"),
            "metric": vector_cases(M, "metric"),
            "k": int_cases("k", 0, 5),
        },
    ),
    "dcg": (
        evaluation.dcg,
        {"scores": S, "relevance": M},
        {
            "scores": vector_cases(S, "scores"),
            "relevance": vector_cases(M, "relevance") + [([1e308] * 4, ValueError, "DCG exceeds")],
            "k": int_cases("k", 0, 5, allow_none=True),
        },
    ),
    "ndcg": (
        evaluation.ndcg,
        {"scores": S, "relevance": M},
        {
            "scores": vector_cases(S, "scores"),
            "relevance": vector_cases(M, "relevance")
            + [
                (M - 1, ValueError, "relevance must be non-negative"),
                (0 * M, ValueError, "relevance is all zero"),
            ],
            "k": int_cases("k", 0, 5, allow_none=True),
        },
    ),
    "linear_fit_with_ci": (
        linear_fit_with_ci,
        {"x": S, "y": M},
        {
            "x": vector_cases(S, "x")
            + [([1.0] * 4, ValueError, "x is constant"), (S * 1e-309, ValueError, "slope")],
            "y": vector_cases(M, "y"),
            "level": real_cases("level", 0.0, 1.0, -0.5),
        },
    ),
    "LinearFit.band": (
        FIT.band,
        {"x_grid": np.linspace(0, 1, 5)},
        {
            "x_grid": vector_cases(np.linspace(0, 1, 5), "x_grid")[:-1]
            + [([1.7e308, -1.7e308], ValueError, "x_grid is so far")],
        },
    ),
}

CASES = [
    pytest.param(name, param, value, error, match, id=f"{name}-{param}-{i}")
    for name, (_, _, params) in TABLE.items()
    for param, cases in params.items()
    for i, (value, error, match) in enumerate(cases)
]


@pytest.mark.parametrize("name", sorted(TABLE))
def test_valid_call_succeeds(name):
    function, valid, _ = TABLE[name]
    assert function(**valid) is not None


@pytest.mark.parametrize("name,param,value,error,match", CASES)
def test_bad_value_is_named_in_a_clean_error(name, param, value, error, match):
    function, valid, _ = TABLE[name]
    with pytest.raises(error) as caught:
        function(**{**valid, param: value})
    assert re.search(match, str(caught.value)), str(caught.value)


@pytest.mark.parametrize(
    "function",
    [
        evaluation.pearson,
        evaluation.spearman,
        evaluation.kendall,
        evaluation.weighted_kendall,
        linear_fit_with_ci,
    ],
)
def test_two_points_are_too_few(function):
    with pytest.raises(ValueError, match="x and y need at least 3 values, got 2"):
        function([0.0, 1.0], [1.0, 0.0])


def test_table_covers_every_parameter():
    functions = {name: getattr(evaluation, name) for name in evaluation.__all__}
    functions.pop("LinearFit")
    functions["LinearFit.band"] = LinearFit.band
    for name, function in functions.items():
        assert name in TABLE, f"{name} has no row"
        expected = set(inspect.signature(function).parameters) - {"self"}
        assert set(TABLE[name][2]) == expected, name
