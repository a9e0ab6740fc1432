"""book/_ext/transferlib_book.py: per-scale execution caches and the offline MathJax copy."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import REPO_ROOT


def _load_extension():
    spec = importlib.util.spec_from_file_location("transferlib_book", REPO_ROOT / "book/_ext/transferlib_book.py")
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
    assert Path(book.nb_execution_cache_path).name.startswith("book-")
    assert Path(smoke.nb_execution_cache_path).name.startswith("smoke-")
    assert book.nb_execution_cache_path != smoke.nb_execution_cache_path


def test_stale_caches_of_the_same_scale_are_removed(tmp_path: Path, monkeypatch) -> None:
    caches = tmp_path / "_build" / ".jupyter_cache"
    (caches / "smoke-oldlibrary").mkdir(parents=True)
    (caches / "book-oldlibrary").mkdir()
    smoke = _configured(tmp_path, monkeypatch, "smoke")
    assert not (caches / "smoke-oldlibrary").exists()
    assert (caches / "book-oldlibrary").exists()
    assert Path(smoke.nb_execution_cache_path).parent == caches


def test_unknown_scale_fails_the_build(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(ValueError, match="unknown scale 'huge'"):
        _configured(tmp_path, monkeypatch, "huge")


def test_library_fingerprint_is_stable() -> None:
    assert ext.library_fingerprint() == ext.library_fingerprint()
    assert len(ext.library_fingerprint()) == 12


def test_mathjax_is_vendored_and_served_locally(tmp_path: Path, monkeypatch) -> None:
    config = _configured(tmp_path, monkeypatch, "smoke")
    assert "://" not in config.mathjax_path
    source = ext.vendored_mathjax()
    for name in ext.MATHJAX_FILES:
        assert (source / name).exists(), name
    app = SimpleNamespace(outdir=str(tmp_path / "html"), builder=SimpleNamespace(format="html"))
    ext._copy_mathjax(app, None)
    assert (tmp_path / "html" / "_static" / config.mathjax_path).is_file()
