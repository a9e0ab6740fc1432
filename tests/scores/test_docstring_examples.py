"""The Examples sections of the public docstrings run and print what they claim."""

import doctest
import importlib

import pytest

MODULES = [
    "transferlib.scores.label_based",
    "transferlib.scores.leep",
    "transferlib.scores.hscore",
    "transferlib.scores.logme",
    "transferlib.scores.gbc",
    "transferlib.scores.transrate",
    "transferlib.scores.nleep",
    "transferlib.scores.parc",
    "transferlib.scores.sfda",
    "transferlib.scores.p2l",
    "transferlib.evaluation.correlation",
    "transferlib.evaluation.ranking",
    "transferlib.evaluation.levels",
    "transferlib.evaluation.regression",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples(name):
    result = doctest.testmod(
        importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted > 0
    assert result.failed == 0
