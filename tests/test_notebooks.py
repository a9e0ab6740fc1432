"""Execute every notebook of the book at smoke scale through papermill (what CI runs).

Each notebook runs from its MyST source via ``transferlib.cli.run_notebook`` (jupytext, then
papermill with the ``python3`` kernel) into a temporary ``.ipynb``; the sources are never written.
All notebooks share one cache directory, as they do in a book build.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from transferlib.cli import list_notebooks, run_notebook

NOTEBOOKS = list_notebooks()


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("transferlib-cache")


@pytest.mark.notebooks  # runs with `-m notebooks`, so an empty notebooks/ cannot pass silently
def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "no notebooks found in notebooks/"


@pytest.mark.notebooks
@pytest.mark.timeout(900)
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_at_smoke_scale(notebook: Path, shared_cache: Path, tmp_path: Path) -> None:
    before = notebook.read_bytes()
    out = run_notebook(notebook, {"cache_dir": str(shared_cache)}, scale="smoke",
                       output=tmp_path / f"{notebook.stem}.ipynb", progress=False)
    assert out.is_file()
    assert notebook.read_bytes() == before
