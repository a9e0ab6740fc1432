"""Code versions: which code an artifact depends on, and what counts as a change."""

from __future__ import annotations

import pytest

from transferlib import provenance
from transferlib.provenance import NEUTRAL_MODULES, code_version, imported_modules, module_closure


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


def _version_of(monkeypatch, tmp_path, text: str) -> str:
    module = tmp_path / "toy.py"
    module.write_text(text)
    monkeypatch.setattr(
        provenance, "_module_file", lambda name: module if name == "transferlib.toy" else None
    )
    provenance._normalised_source.cache_clear()
    provenance._direct_imports.cache_clear()
    return code_version("transferlib.toy")


def test_comments_docstrings_and_formatting_do_not_change_the_version(monkeypatch, tmp_path):
    base = _version_of(monkeypatch, tmp_path, "def f(x):\n    return x * 2\n")
    same = _version_of(
        monkeypatch,
        tmp_path,
        '"""Doc."""\n\n\ndef f(x):  # twice\n    """Twice x."""\n    return (x *\n            2)\n',
    )
    changed = _version_of(monkeypatch, tmp_path, "def f(x):\n    return x * 3\n")
    provenance._normalised_source.cache_clear()
    provenance._direct_imports.cache_clear()
    assert base == same and changed != base
