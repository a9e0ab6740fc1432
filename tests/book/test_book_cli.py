"""transferlib.cli: parameter parsing, notebook lookup, runs that never touch the sources, cache."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from transferlib import cli
from transferlib.cache import cache_root


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3", 3),
        ("0.5", 0.5),
        ("None", None),
        ("True", True),
        ("cifar10", "cifar10"),
        ("'7'", "7"),
        ("[1, 2]", [1, 2]),
        ("/data/x", "/data/x"),
    ],
)
def test_parse_value(text: str, value: object) -> None:
    assert cli.parse_value(text) == value


def test_find_notebook_by_name_and_by_path(repo_root: Path) -> None:
    by_name = cli.find_notebook("background")
    assert by_name == repo_root / "notebooks" / "background.md"
    assert cli.find_notebook(by_name) == by_name


def test_find_notebook_lists_what_exists() -> None:
    with pytest.raises(FileNotFoundError, match="available in .*background"):
        cli.find_notebook("no_such_notebook")


def test_every_notebook_declares_the_common_parameters() -> None:
    notebooks = cli.list_notebooks()
    assert notebooks, "no notebooks found"
    for path in notebooks:
        declared = cli.notebook_parameters(path)
        missing = {"scale", "dataset", "data_root", "device", "seed", "cache_dir"} - set(declared)
        assert not missing, f"{path.name} does not declare {sorted(missing)}"


def test_run_refuses_unknown_scale_parameter_and_md_output(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown scale 'huge'"):
        cli.run_notebook("background", scale="huge", output=tmp_path / "x.ipynb")
    with pytest.raises(ValueError, match="has no parameter\\(s\\) epochs"):
        cli.run_notebook("background", {"epochs": 3}, output=tmp_path / "x.ipynb")
    with pytest.raises(ValueError, match="must be an .ipynb file"):
        cli.run_notebook("background", scale="smoke", output=tmp_path / "background.md")


def test_main_reports_bad_runs_with_exit_status_2(capsys) -> None:
    assert cli.main(["run", "background", "-p", "epochs", "3"]) == 2
    assert "has no parameter(s) epochs" in capsys.readouterr().err


def test_default_output_is_in_runs_and_never_the_source(repo_root: Path) -> None:
    out = cli.default_output(repo_root / "notebooks" / "data.md", "smoke")
    assert (
        out.parent == Path("runs") and out.suffix == ".ipynb" and out.name.startswith("data_smoke_")
    )


def test_list_prints_each_notebook_with_its_parameters(capsys) -> None:
    assert cli.main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("background") and "seed=0" in line for line in lines)


def test_cache_info_and_clear(tmp_path: Path, capsys) -> None:
    root = cache_root(tmp_path / "cache")
    (root / "models").mkdir()
    (root / "models" / "a.pt").write_bytes(b"x" * 2048)
    info = cli.cache_info(root)
    assert re.search(r"models\s+1 files\s+2.0 KiB", info) and re.search(r"total\s+1 files", info)
    assert cli.main(["cache", "clear", "--yes", "--cache-dir", str(root)]) == 0
    assert not root.exists()
    assert "no cache directory" in cli.cache_info(root)


def test_environment_report_names_scale_versions_and_hardware(monkeypatch) -> None:
    monkeypatch.setenv("TRANSFERLIB_SCALE", "smoke")
    report = cli.environment_report()["value"]
    assert report["TRANSFERLIB_SCALE"] == "smoke"
    assert report["python"] == ".".join(map(str, sys.version_info[:3]))
    assert report["torch version"] != "not installed" and "GPU" in report.index


@pytest.mark.slow
def test_run_executes_into_a_copy_and_bad_dataset_stops_before_the_kernel(
    tmp_path: Path, repo_root: Path
) -> None:
    import nbformat

    source = repo_root / "notebooks" / "background.md"
    before = source.read_bytes()
    out = cli.run_notebook(
        "background", {"seed": 1}, scale="smoke", output=tmp_path / "bg.ipynb", progress=False
    )
    executed = nbformat.read(out, as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and 'scale = "smoke"' in injected[0].source and "seed = 1" in injected[0].source
    assert source.read_bytes() == before

    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        cli.run_notebook(
            "background", {"dataset": "nope"}, scale="smoke", output=tmp_path / "bad.ipynb"
        )
    assert not (tmp_path / "bad.ipynb").exists()  # checked before any kernel started
