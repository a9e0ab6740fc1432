"""The book's sources: table of contents, notebook headers and parameters, figure captions."""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest
import yaml
from conftest import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.md"))
REQUIRED_PARAMETERS = ("scale", "dataset", "data_root", "device", "seed", "cache_dir")


def _toc_files(entries: list[dict]) -> list[str]:
    files = []
    for entry in entries:
        if "file" in entry:
            files.append(entry["file"])
        for key in ("chapters", "sections", "parts"):
            files += _toc_files(entry.get(key, []))
    return files


def toc_files() -> list[str]:
    toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text())
    return [toc["root"], *_toc_files(toc.get("parts", []))]


def test_toc_entries_exist() -> None:
    missing = [
        f
        for f in toc_files()
        if not any((REPO_ROOT / f).with_suffix(s).is_file() for s in (".md", ".ipynb"))
    ]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"


def test_every_notebook_is_in_the_toc() -> None:
    listed = set(toc_files())
    unlisted = [p.name for p in NOTEBOOKS if f"notebooks/{p.stem}" not in listed]
    assert not unlisted, (
        f"notebooks missing from _toc.yml (only_build_toc_files would drop them): {unlisted}"
    )


def test_config_fails_loudly_and_builds_offline() -> None:
    config = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())
    assert config["only_build_toc_files"] is True
    assert config["execute"]["execute_notebooks"] == "cache"
    assert (
        config["execute"]["raise_on_error"] is True and config["execute"]["allow_errors"] is False
    )
    assert {"dollarmath", "amsmath", "colon_fence", "deflist"} <= set(
        config["parse"]["myst_enable_extensions"]
    )
    assert "linkify" not in config["parse"]["myst_enable_extensions"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_starts_with_a_parameters_cell_reading_the_scale(path: Path) -> None:
    notebook = jupytext.read(path)
    assert notebook.metadata.get("kernelspec", {}).get("name") == "python3"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and "parameters" in code[0].metadata.get("tags", []), (
        "first code cell must be tagged parameters"
    )
    source = code[0].source
    assert 'scale = os.environ.get("TRANSFERLIB_SCALE", "book")' in source
    for name in REQUIRED_PARAMETERS:
        assert re.search(rf"^{name} = ", source, re.MULTILINE), (
            f"parameters cell does not declare {name}"
        )


_FIGURE = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{(?:glue:)?figure\}[^\n]*\n(?P<body>.*?)^(?P=fence)\s*$",
    re.MULTILINE | re.DOTALL,
)


@pytest.mark.parametrize(
    "path",
    NOTEBOOKS + sorted((REPO_ROOT / "book").rglob("*.md")),
    ids=lambda p: p.relative_to(REPO_ROOT).as_posix(),
)
def test_every_figure_has_a_name_and_a_caption(path: Path) -> None:
    for match in _FIGURE.finditer(path.read_text()):
        body = match.group("body")
        options = [line for line in body.splitlines() if line.startswith(":")]
        caption = "\n".join(
            line for line in body.splitlines() if line.strip() and not line.startswith(":")
        )
        assert any(o.startswith(":name:") for o in options), (
            f"figure without :name: in\n{match.group(0)}"
        )
        assert caption, f"figure without a caption in\n{match.group(0)}"
