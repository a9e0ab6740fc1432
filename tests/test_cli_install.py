"""The command line after a regular install from a built wheel, and the Makefile's conda route."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

TINY = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

```{code-cell} ipython3
:tags: [parameters]

scale = "book"
dataset = "glyphs"
data_root = None
device = "auto"
seed = 0
cache_dir = None
```

```{code-cell} ipython3
import transferlib

print("imported from", transferlib.__file__)
```
"""


def _run(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH would let the checkout shadow the installed package.
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VENV")}
    return subprocess.run(
        argv, cwd=cwd, env={**clean, **env}, capture_output=True, text=True, check=False
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_list_and_run_work_from_an_installed_wheel(tmp_path: Path, repo_root: Path) -> None:
    """Build the wheel, install it into a fresh venv, then ``list`` and run a packaged notebook.

    The fresh venv gets the wheel with ``--no-deps``; it sees this interpreter's site-packages
    (torch, papermill, ...) through a ``.pth`` file instead of installing them again, which
    would download gigabytes. Only plain folders are added that way, so this environment's own
    (editable) transferlib is not visible: the package the venv imports is the wheel's, which
    the executed notebook checks. Everything runs outside the checkout and without PYTHONPATH.
    """
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy2(repo_root / name, source / name)
    for folder in ("transferlib", "notebooks"):
        shutil.copytree(
            repo_root / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    built = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        cwd=tmp_path,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("transferlib-*.whl")

    venv = tmp_path / "venv"
    assert (
        _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path).returncode == 0
    )
    python = venv / "bin" / "python"
    site = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path
    ).stdout.strip()
    Path(site, "_shared_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = _run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], tmp_path)
    assert installed.returncode == 0, installed.stderr

    work = tmp_path / "work"
    work.mkdir()
    cache = str(tmp_path / "cache")
    listed = _run([str(venv / "bin" / "transferlib"), "list"], work)
    assert listed.returncode == 0, listed.stderr
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert names == sorted(p.stem for p in (repo_root / "notebooks").glob("*.md"))
    assert "seed=0" in listed.stdout

    ran = _run(
        [
            str(venv / "bin" / "transferlib"),
            "run",
            "background",
            "--scale",
            "smoke",
            "--no-progress",
            "-o",
            "bg.ipynb",
        ],
        work,
        TRANSFERLIB_CACHE=cache,
    )
    assert ran.returncode == 0, ran.stderr
    assert (work / "bg.ipynb").is_file()

    (work / "tiny.md").write_text(TINY)
    probe = _run(
        [str(venv / "bin" / "transferlib"), "run", "tiny.md", "--no-progress", "-o", "t.ipynb"],
        work,
        TRANSFERLIB_CACHE=cache,
    )
    assert probe.returncode == 0, probe.stderr
    assert f"imported from {site}/transferlib/__init__.py" in (work / "t.ipynb").read_text()


def _dry_run(repo_root: Path, **env: str) -> str:
    done = _run(["make", "-n", "-B", "book", "test"], repo_root, **env)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_uses_the_environment_named_by_venv(repo_root: Path) -> None:
    """``VENV=$CONDA_PREFIX make book`` (README) installs into that environment and keeps its torch."""
    commands = _dry_run(repo_root, VENV="/opt/conda/envs/transferlib")
    prefix = "/opt/conda/envs/transferlib/bin"
    assert ".venv" not in commands
    assert f"test -x {prefix}/python ||" in commands  # a venv only if there is no python there
    assert f'{prefix}/python -c "import torch, torchvision" 2>/dev/null' in commands
    torch_install = next(line for line in commands.splitlines() if '"torch==' in line)
    assert torch_install.lstrip().startswith(f"|| {prefix}/python -m pip install")
    assert f'{prefix}/python -m pip install -q -e ".[dev]"' in commands
    assert f"{prefix}/jupyter-book build ." in commands
    assert f"{prefix}/python -m pytest" in commands
    assert "touch /opt/conda/envs/transferlib/.transferlib-installed" in commands


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_defaults_to_a_local_venv(repo_root: Path) -> None:
    commands = _dry_run(repo_root)
    assert "test -x .venv/bin/python || { python3 -m venv .venv" in commands
    assert ".venv/bin/jupyter-book build ." in commands
