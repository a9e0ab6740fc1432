"""Execute every executable page of the book at smoke scale through papermill (what CI runs).

The pages are read from ``_toc.yml``: every page whose MyST front matter names a kernel (the
notebooks in ``notebooks/`` and narrative pages such as ``book/nce/index.md`` that run code).
Each runs from its source via ``transferlib.cli.run_notebook`` (jupytext, then papermill with the
``python3`` kernel) into a temporary ``.ipynb``; the sources are never written. All pages share
one cache directory, as they do in a book build.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from transferlib.cli import notebook_parameters, run_notebook

REPO = Path(__file__).resolve().parents[1]


def _toc_files(entry: dict) -> Iterator[str]:
    for key in ("root", "file"):
        if key in entry:
            yield entry[key]
    for key in ("parts", "chapters", "sections"):
        for child in entry.get(key, []):
            yield from _toc_files(child)


def executable_pages() -> list[Path]:
    """Pages listed in ``_toc.yml`` whose front matter declares a kernel, in book order."""
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    pages = []
    for name in _toc_files(toc):
        path = REPO / f"{name}.md"
        if not path.is_file():
            continue
        text = path.read_text()
        front = text.split("\n---", 1)[0] if text.startswith("---") else ""
        if "kernelspec:" in front:
            pages.append(path)
    return pages


PAGES = executable_pages()


@pytest.mark.notebooks  # runs with `-m notebooks`, so an empty list cannot pass silently
def test_the_toc_lists_the_notebooks_and_executable_book_pages() -> None:
    names = {p.relative_to(REPO).as_posix() for p in PAGES}
    assert {"notebooks/nce_attributes.md", "book/nce/index.md"} <= names
    assert {p.relative_to(REPO).as_posix() for p in (REPO / "notebooks").glob("*.md")} <= names


@pytest.mark.notebooks
@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    "page", PAGES, ids=lambda p: p.relative_to(REPO).with_suffix("").as_posix()
)
def test_page_runs_at_smoke_scale(
    page: Path, shared_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pages without a parameters cell (execution status, full scale) read the environment.
    monkeypatch.setenv("TRANSFERLIB_SCALE", "smoke")
    monkeypatch.setenv("TRANSFERLIB_CACHE", str(shared_cache))
    declared = notebook_parameters(page)
    params = {"cache_dir": str(shared_cache)} if "cache_dir" in declared else {}
    before = page.read_bytes()
    out = run_notebook(
        page,
        params,
        scale="smoke" if "scale" in declared else None,
        output=tmp_path / f"{page.stem}.ipynb",
        progress=False,
    )
    assert out.is_file()
    assert page.read_bytes() == before


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("transferlib-cache")
