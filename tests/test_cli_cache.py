"""``transferlib cache clear`` deletes only a transferlib cache, after asking, and can clear one kind
or one scale; ``cache info`` reports sizes per kind and per scale and temporary files."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from transferlib import cache, cli


def _artifact(root: Path, kind: str, key: str, scale: str | None, n: int = 256) -> Path:
    cache.load_or_build(
        kind,
        key,
        lambda: {"x": np.zeros(n, dtype=np.uint8)},
        save=cache.save_npz,
        load=cache.load_npz,
        suffix=".npz",
        cache_dir=root,
        scale=scale,
    )
    return root / kind / f"{key}.npz"


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache with data and models at two scales and one result table."""
    monkeypatch.delenv("TRANSFERLIB_SCALE", raising=False)
    root = cache.cache_root(tmp_path / "cache")
    _artifact(root, "data", "glyphs-smoke", "smoke")
    _artifact(root, "models", "net-smoke", "smoke")
    _artifact(root, "models", "net-book", "book", n=4096)
    store = cache.ResultStore(root / "results" / "rows.csv", ["task"], scale="book")
    store.append({"task": "a", "error": 0.5})
    return root


def _clear(*args: str) -> int:
    return cli.main(["cache", "clear", *args])


def test_clear_refuses_a_folder_that_is_not_a_transferlib_cache(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "some" / "folder"
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("a user's file")
    monkeypatch.setenv("TRANSFERLIB_CACHE", str(folder))
    assert _clear("--yes") == 2
    assert (folder / "notes.txt").read_text() == "a user's file"
    err = capsys.readouterr().err
    assert "is not a transferlib cache" in err and len(err.splitlines()) == 1


def test_clear_reports_an_absent_folder_truthfully(tmp_path, capsys):
    assert _clear("--yes", "--cache-dir", str(tmp_path / "absent")) == 1
    assert "no cache directory at" in capsys.readouterr().err
    assert not (tmp_path / "absent").exists()


@pytest.mark.parametrize(("answer", "deleted"), [("n", False), ("", False), ("y", True)])
def test_clear_asks_before_deleting(root, monkeypatch, capsys, answer, deleted):
    questions = []
    monkeypatch.setattr("builtins.input", lambda q: questions.append(q) or answer)
    assert _clear("--cache-dir", str(root)) == (0 if deleted else 1)
    assert "Delete the cache directory" in questions[0] and str(root) in questions[0]
    assert root.exists() != deleted


def test_clear_without_a_terminal_deletes_nothing(root, monkeypatch):
    def no_terminal(question):
        raise EOFError

    monkeypatch.setattr("builtins.input", no_terminal)
    assert _clear("--cache-dir", str(root)) == 1
    assert root.exists()


def test_clear_one_kind_or_one_scale(root, capsys):
    assert _clear("--yes", "--models", "--cache-dir", str(root)) == 0
    assert "removed 2 files" in capsys.readouterr().out
    assert not list((root / "models").iterdir()) and not list(
        (root / ".manifests" / "models").iterdir()
    )
    assert (root / "data" / "glyphs-smoke.npz").exists() and (
        root / "results" / "rows.csv"
    ).exists()

    _artifact(root, "models", "net-smoke", "smoke")
    _artifact(root, "models", "net-book", "book")
    assert _clear("--yes", "--scale", "smoke", "--cache-dir", str(root)) == 0
    names = {e.path.name for e in cache.cache_entries(root)}
    assert names == {"net-book.npz", "rows.csv"}

    assert _clear("--yes", "--results", "--scale", "book", "--cache-dir", str(root)) == 0
    assert {e.path.name for e in cache.cache_entries(root)} == {"net-book.npz"}
    assert _clear("--yes", "--features", "--cache-dir", str(root)) == 1
    assert "nothing to clear" in capsys.readouterr().err


def test_clear_leaves_an_artifact_that_is_being_built(root, capsys):
    with cache._lock(root / "models" / "net-book.npz"):
        assert _clear("--yes", "--models", "--cache-dir", str(root)) == 0
    assert "left 1 in use" in capsys.readouterr().out
    assert (root / "models" / "net-book.npz").exists()
    assert not (root / "models" / "net-smoke.npz").exists()


def test_info_shows_path_kinds_scales_and_temporary_files(root, capsys):
    (root / "experiments").mkdir()
    (root / "experiments" / "old.csv").write_text("a\n")
    stale = root / "models" / ".x.pt.otherhost.1.0a1b2c3d.tmp"
    stale.write_bytes(b"x" * 100)
    os.utime(stale, (0, 0))
    assert cli.main(["cache", "info", "--cache-dir", str(root)]) == 0
    info = capsys.readouterr().out
    assert info.startswith(f"cache directory {root}")
    assert re.search(r"data\s+1 files", info) and re.search(r"models\s+2 files", info)
    assert re.search(r"results\s+1 files", info) and re.search(
        r"experiments \(other\)\s+1 files", info
    )
    assert re.search(r"smoke\s+2 files", info) and re.search(r"book\s+2 files", info)
    assert re.search(r"\(not recorded\)\s+1 files", info)
    assert "removed 1 stale (100 B)" in info and not stale.exists()


def test_info_on_an_absent_folder_creates_nothing(tmp_path, capsys):
    assert cli.main(["cache", "info", "--cache-dir", str(tmp_path / "absent")]) == 0
    assert "no cache directory" in capsys.readouterr().out
    assert not (tmp_path / "absent").exists()
