"""The shared validation module: conversions, label kinds, tolerances, the registry's
calling convention, and that scores/ and evaluation/ import only it from transferlib."""

import ast
import sys
from pathlib import Path

import numpy as np
import pytest

import transferlib
from transferlib.scores import SCORES, leep, nce
from transferlib.validation import (
    as_float_array,
    as_labels,
    as_probabilities,
    check_choice,
    check_int,
    check_probability_rows,
    check_real,
    probability_atol,
)

RNG = np.random.default_rng(0)
Y = np.array([0, 1, 2] * 4)
FEATURES = RNG.standard_normal((12, 3)) + Y[:, None]
FEATURE_SCORES = [name for name, info in SCORES.items() if info.needs == "features"]
KWARGS = {"nleep": {"components_per_class": 1}}
PACKAGE = Path(transferlib.__file__).parent


def _call(name, features=FEATURES, labels=Y):
    return SCORES[name].compute(features=features, target_labels=labels, **KWARGS.get(name, {}))


@pytest.mark.parametrize("name", FEATURE_SCORES)
def test_lists_and_string_labels_give_the_same_value(name):
    value = _call(name)
    assert type(value) is float and np.isfinite(value)
    assert _call(name, FEATURES.tolist(), Y.tolist()) == pytest.approx(value)
    assert _call(name, labels=np.array(["x", "y", "z"])[Y]) == pytest.approx(value)


def test_labels_are_encoded_in_sorted_order():
    codes, classes = as_labels(["b", "a", "c", "a"], "labels")
    assert codes.tolist() == [1, 0, 2, 0] and classes.tolist() == ["a", "b", "c"]
    codes, classes = as_labels(np.array([7, 3, 7, 100]), "labels")  # counting fast path
    assert codes.tolist() == [1, 0, 1, 2] and classes.tolist() == [3, 7, 100]
    codes, classes = as_labels(np.array([-5, 10**12, -5]), "labels")  # sorting path
    assert codes.tolist() == [0, 1, 0] and classes.tolist() == [-5, 10**12]


@pytest.mark.parametrize(
    "labels",
    [[0, "0", 1], [True, 1, 0], [b"a", "a"], np.array([0, "a"], dtype=object)],
)
def test_labels_of_mixed_kinds_are_rejected(labels):
    """0 and '0' would be merged by numpy's coercion to strings; True and 1 likewise."""
    with pytest.raises(TypeError, match="mixes label types"):
        as_labels(labels, "labels")
    with pytest.raises(TypeError, match="source_labels mixes"):
        nce(labels, [0, 1, 0][: len(labels)])


def test_float_arrays_keep_their_backend_and_precision_when_asked():
    as32 = as_float_array(FEATURES.astype(np.float32), "x", keep_float32=True)
    assert as32.dtype == np.float32
    assert as_float_array(FEATURES.astype(np.float16), "x", keep_float32=True).dtype == np.float64
    assert as_float_array([[1, 2]], "x").dtype == np.float64
    assert as_float_array(np.array([[1, 2]], dtype=object), "x").dtype == np.float64


def test_probability_tolerance_follows_the_dtype():
    assert probability_atol(np.float64) == probability_atol(np.float32) == 1e-5
    assert probability_atol(np.float16) == pytest.approx(2 * 2.0**-10)
    assert probability_atol("torch.bfloat16") == pytest.approx(2 * 2.0**-7)
    rows = np.full((4, 3), 1 / 3) + np.array([2e-4, 0, 0])  # float16-size rounding
    with pytest.raises(ValueError, match="sum to 1"):
        as_probabilities(rows, "p")  # float64 storage: 1e-5
    as_probabilities(rows.astype(np.float16), "p")  # float16 storage: 2e-3
    assert as_probabilities(rows, "p", atol=1e-3) is rows  # validated, not copied


def test_probability_rows_are_judged_by_their_sums_and_smallest_entry():
    rows = np.full((2, 2), 0.5)
    check_probability_rows(rows, np.array([1.0, 1 - 1e-6]), 0.0, "p", 1e-5)
    check_probability_rows(rows, np.array([1.0, 1.0]), -0.0, "p", 1e-5)  # -0.0 is not negative
    nan_entry = np.array([[np.nan, 0.5], [0.5, 0.5]])
    huge = np.array([[1e308, 1e308], [0.5, 0.5]])
    for probs, sums, lowest, message in [
        (nan_entry, [np.nan, 1.0], 0.0, "p contains NaN or inf"),
        (np.array([[-np.inf, 0.5], [0.5, 0.5]]), [-np.inf, 1.0], -np.inf, "NaN or inf"),
        (huge, [np.inf, 1.0], 0.5, r"p rows must sum to 1 \(a row sum overflows\)"),
        (rows, [1.0, 1.0], -1e-300, "p has negative entries"),
        (rows, [1.0, 1.1], 0.0, r"largest deviation 0.1 > atol=1e-05\); pass probabilities, not"),
    ]:
        with pytest.raises(ValueError, match=message):
            check_probability_rows(probs, np.array(sums), lowest, "p", 1e-5)


def test_scalar_checks():
    assert check_int(np.int64(3), "k", minimum=1) == 3
    assert check_int(None, "k", allow_none=True) is None
    assert check_real(np.float32(0.5), "x", maximum=1.0) == 0.5
    assert check_real(2, "x") == 2.0
    with pytest.raises(ValueError, match="x must be < 1.0"):
        check_real(1.0, "x", maximum=1.0, strict_maximum=True)
    with pytest.raises(TypeError, match="k must be an integer, got 2.0"):
        check_int(2.0, "k")
    assert check_choice("a", "m", ("a", "b")) == "a"


def test_registry_calls_source_side_first():
    y = np.array([0, 0, 1, 1, 2, 2] * 2)
    z = np.array([0, 0, 1, 1, 1, 1] * 2)  # NCE(Y|Z) < 0 but NCE(Z|Y) = 0
    assert SCORES["nce"].compute(source_labels=z, target_labels=y) == nce(z, y) < 0
    probs = np.full((12, 4), 0.25)
    assert SCORES["leep"].compute(source_probs=probs, target_labels=y) == leep(probs, y)
    with pytest.raises(TypeError, match="source_probs"):
        SCORES["leep"].compute(features=FEATURES, target_labels=y)
    with pytest.raises(TypeError):
        SCORES["nce"].compute(z, y)  # keyword-only: no order to get wrong
    for name, info in SCORES.items():
        assert info.name == name and info.higher_is_better and info.reference


def _transferlib_imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


@pytest.mark.parametrize("package", ["scores", "evaluation"])
def test_pure_packages_import_only_the_validation_leaf(package):
    for path in (PACKAGE / package).glob("*.py"):
        for module in _transferlib_imports(path):
            if module.startswith("transferlib"):
                allowed = ("transferlib.validation", f"transferlib.{package}")
                assert module.startswith(allowed), f"{path.name} imports {module}"


def test_validation_is_a_leaf_that_imports_only_numpy():
    modules = {m.split(".")[0] for m in _transferlib_imports(PACKAGE / "validation.py")}
    assert modules - set(sys.stdlib_module_names) == {"numpy"}
