"""book/_ext/transferlib_book.py: per-scale execution caches and the offline MathJax copy."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import REPO_ROOT

from transferlib.provenance import code_version, module_closure


def _load_extension():
    spec = importlib.util.spec_from_file_location(
        "transferlib_book", REPO_ROOT / "book/_ext/transferlib_book.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["transferlib_book"] = module
    spec.loader.exec_module(module)
    return module


ext = _load_extension()


def _configured(tmp_path: Path, monkeypatch, scale: str | None) -> SimpleNamespace:
    if scale is None:
        monkeypatch.delenv("TRANSFERLIB_SCALE", raising=False)
    else:
        monkeypatch.setenv("TRANSFERLIB_SCALE", scale)
    config = SimpleNamespace()
    ext._configure(SimpleNamespace(outdir=str(tmp_path / "_build" / "html")), config)
    return config


def test_each_scale_gets_its_own_execution_cache(tmp_path: Path, monkeypatch) -> None:
    book = _configured(tmp_path, monkeypatch, None)
    smoke = _configured(tmp_path, monkeypatch, "smoke")
    assert book.transferlib_scale == "book" and smoke.transferlib_scale == "smoke"
    assert Path(book.nb_execution_cache_path).name == "book"
    assert Path(smoke.nb_execution_cache_path).name == "smoke"


def test_unknown_scale_fails_the_build(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(ValueError, match="unknown scale 'huge'"):
        _configured(tmp_path, monkeypatch, "huge")


NOTEBOOK = """---
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A page

```{code-cell} ipython3
:tags: [remove-cell]
from transferlib.scores import leep
```
"""


def test_a_notebook_is_keyed_by_the_code_it_imports() -> None:
    source = [NOTEBOOK]
    ext._mark_code_version(SimpleNamespace(env=SimpleNamespace()), "page", source)
    version = code_version("transferlib.scores")
    assert f"display_name: Python 3 (transferlib {version})" in source[0]
    assert "name: python3" in source[0]  # the kernel that runs it is unchanged
    assert source[0].replace(f" (transferlib {version})", "") == NOTEBOOK


def test_pages_without_code_or_transferlib_imports_are_left_alone() -> None:
    for text in (
        "# Plain page\n",
        NOTEBOOK.replace("from transferlib.scores import leep", "1 + 1"),
    ):
        source = [text]
        ext._mark_code_version(SimpleNamespace(env=SimpleNamespace()), "page", source)
        assert source[0] == text


def test_an_unrelated_module_does_not_change_a_notebook_version() -> None:
    page = ext.notebook_code_version(NOTEBOOK)
    assert page == code_version("transferlib.scores")
    assert "transferlib.experiments.sweep" not in module_closure(["transferlib.scores"])
    with_layer = NOTEBOOK.replace("leep", "leep\nfrom transferlib.experiments import sweep")
    assert ext.notebook_code_version(with_layer) != page


def test_mathjax_is_vendored_and_served_locally(tmp_path: Path, monkeypatch) -> None:
    config = _configured(tmp_path, monkeypatch, "smoke")
    assert "://" not in config.mathjax_path
    source = ext.vendored_mathjax()
    for name in ext.MATHJAX_FILES:
        assert (source / name).exists(), name
    app = SimpleNamespace(outdir=str(tmp_path / "html"), builder=SimpleNamespace(format="html"))
    ext._copy_mathjax(app, None)
    assert (tmp_path / "html" / "_static" / config.mathjax_path).is_file()


def test_pages_whose_library_code_changed_are_outdated(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(NOTEBOOK)
    env = SimpleNamespace(doc2path=lambda docname: str(tmp_path / f"{docname}.md"))
    app = SimpleNamespace(env=env)
    ext._mark_code_version(app, "page", [NOTEBOOK])
    assert ext._outdated_by_code(app, env, set(), set(), set()) == []
    env.transferlib_code_versions["page"] = "version of an older library"
    assert ext._outdated_by_code(app, env, set(), set(), set()) == ["page"]
    assert ext._outdated_by_code(app, env, set(), {"page"}, set()) == []  # re-read anyway
