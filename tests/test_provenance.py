"""Code versions: which code an artifact depends on, and what counts as a change."""

from __future__ import annotations

import pytest

from transferlib.provenance import (
    NEUTRAL_MODULES,
    code_version,
    imported_modules,
    module_closure,
    source_fingerprint,
)


def test_closure_follows_imports_inside_functions_and_skips_neutral_modules():
    closure = module_closure(["transferlib.training.loop"])
    assert {
        "transferlib.training.loop",
        "transferlib.models.small_cnn",
        "transferlib.training.extract",
    } <= set(closure)
    assert not set(closure) & NEUTRAL_MODULES
    # the package __init__ counts with its own code, not with its re-exported siblings
    assert "transferlib.training" in closure and "transferlib.training.heads" not in closure
    # data/__init__ imports data.real lazily inside load_dataset: still part of the closure
    assert "transferlib.data.real" in module_closure(["transferlib.data"])


def test_from_package_import_counts_the_binding_it_gets():
    # scores/__init__ binds `leep` (the function): the package's code is what is used
    assert imported_modules("from transferlib.scores import leep") == {"transferlib.scores"}
    # glyph_tables is not bound by data/__init__: only the submodule is used
    assert imported_modules("from transferlib.data import glyph_tables") == {
        "transferlib.data.glyph_tables"
    }
    assert imported_modules("import numpy\nfrom os import path") == set()


def test_unknown_modules_are_refused():
    with pytest.raises(ValueError, match="not a module"):
        module_closure(["transferlib.nope"])


def test_comments_docstrings_and_formatting_do_not_change_the_fingerprint():
    base = source_fingerprint("def f(x):\n    return x * 2\n")
    same = source_fingerprint(
        '"""Doc."""\n\n\ndef f(x):  # twice\n    """Twice x."""\n    return (x *\n            2)\n'
    )
    assert base == same
    assert source_fingerprint("def f(x):\n    return x * 3\n") != base
    assert source_fingerprint("def g(x):\n    return x * 2\n") != base


def test_code_version_is_the_closure_of_fingerprints():
    leep = code_version("transferlib.scores.leep")
    assert leep == code_version("transferlib.scores.leep")
    assert leep != code_version("transferlib.scores.logme")
    # a module and the package that re-exports it: the package's closure is larger
    assert set(module_closure(["transferlib.scores.leep"])) < set(
        module_closure(["transferlib.scores"])
    )
