"""environment.yml (conda) and pyproject.toml (pip) name the same packages with the same bounds."""

import re
from pathlib import Path

import pytest
import yaml

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names where they differ from PyPI's; dask[distributed] is two conda packages
CONDA_NAMES = {"torch": ["pytorch"], "dask": ["dask-core", "distributed"]}


def _split(requirement: str) -> tuple[str, str]:
    """Name (lower case, extras dropped) and version bounds of one requirement."""
    match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*(.*)", requirement.strip())
    assert match, requirement
    return match.group(1).lower(), match.group(3).replace(" ", "")


def _pyproject() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = [project["dependencies"], *project["optional-dependencies"].values()]
    pairs = [_split(r) for group in groups for r in group if not r.startswith("transferlib")]
    return {conda: bounds for name, bounds in pairs for conda in CONDA_NAMES.get(name, [name])}


def _environment() -> dict[str, str]:
    entries = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    conda = [e for e in entries if isinstance(e, str) and not e.startswith(("python", "pip"))]
    pip = next(e["pip"] for e in entries if isinstance(e, dict))
    return dict(_split(r.split("#")[0]) for r in conda + [r for r in pip if r != "-e ."])


def test_environment_and_pyproject_carry_the_same_dependencies():
    pip, conda = _pyproject(), _environment()
    assert sorted(pip) == sorted(conda)
    for name, bounds in pip.items():
        # conda pins torch exactly; pip allows a range that ends at that version
        if name in ("pytorch", "torchvision"):
            assert bounds.endswith("<=" + conda[name].removeprefix("=")), name
        else:
            assert bounds == conda[name], name
