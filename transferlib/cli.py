"""Command line of transferlib: rerun the book's notebooks with other parameters, inspect them,
and manage the on-disk cache.

Usage::

    python -m transferlib list
    python -m transferlib run nce_attributes --scale full -p device cuda -p seed 1 [-o out.ipynb]
    python -m transferlib cache info
    python -m transferlib cache clear
    python -m transferlib env

``run`` converts the MyST markdown notebook with jupytext and executes it with papermill into
``runs/`` (or ``-o``); the markdown source is never written to.
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import os
import platform
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from transferlib.cache import cache_root
from transferlib.config import DEFAULT_SCALE, SCALES, check_scale

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
RUNS_DIR = Path("runs")
DEFAULT_KERNEL = "python3"


def parse_value(text: str) -> Any:
    """Turn a ``-p key value`` string into a Python value.

    Python literals (numbers, ``None``, ``True``, quoted strings, lists) are evaluated; anything else
    stays a string, so ``-p dataset cifar10`` and ``-p seed 3`` both do what one expects.

    Examples
    --------
    >>> parse_value("3"), parse_value("None"), parse_value("cifar10"), parse_value("[1, 2]")
    (3, None, 'cifar10', [1, 2])
    """
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def find_notebook(name: str | Path, notebooks_dir: Path = NOTEBOOKS_DIR) -> Path:
    """Return the MyST notebook ``name``: an existing path, or a stem in ``notebooks_dir``.

    Raises
    ------
    FileNotFoundError
        If neither exists; the message lists the available notebooks.
    """
    path = Path(name)
    if path.is_file():
        return path
    candidate = notebooks_dir / f"{path.stem}.md"
    if candidate.is_file():
        return candidate
    available = ", ".join(p.stem for p in list_notebooks(notebooks_dir)) or "none"
    raise FileNotFoundError(f"no notebook {str(name)!r}; available in {notebooks_dir}: {available}")


def list_notebooks(notebooks_dir: Path = NOTEBOOKS_DIR) -> list[Path]:
    """Return the MyST markdown notebooks in ``notebooks_dir``, sorted by name."""
    return sorted(notebooks_dir.glob("*.md"))


def read_notebook(path: Path, kernel_name: str = DEFAULT_KERNEL):
    """Read a MyST markdown notebook into an ``nbformat`` notebook with an explicit kernel."""
    import jupytext

    nb = jupytext.read(path)
    nb.metadata["kernelspec"] = {"name": kernel_name, "display_name": kernel_name, "language": "python"}
    return nb


def notebook_parameters(path: Path) -> dict[str, dict[str, Any]]:
    """Return the parameters papermill infers from the notebook's ``parameters`` cell.

    Returns
    -------
    dict
        ``{name: {"name", "inferred_type_name", "default", "help"}}``.
    """
    import papermill

    return papermill.inspect_notebook(read_notebook(path))


def default_output(notebook: Path, scale: str, runs_dir: Path = RUNS_DIR) -> Path:
    """Return ``runs/<notebook>_<scale>_<UTC time>.ipynb``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return runs_dir / f"{notebook.stem}_{scale}_{stamp}.ipynb"


def run_notebook(
    notebook: str | Path,
    parameters: Mapping[str, Any] | None = None,
    *,
    scale: str | None = None,
    output: str | Path | None = None,
    kernel_name: str = DEFAULT_KERNEL,
    notebooks_dir: Path = NOTEBOOKS_DIR,
    progress: bool = True,
) -> Path:
    """Execute a MyST notebook with papermill and return the path of the executed ``.ipynb``.

    Parameters
    ----------
    notebook : str or Path
        Path of a ``.md`` notebook, or its name in ``notebooks_dir`` (e.g. ``"data"``).
    parameters : mapping, optional
        Values injected after the notebook's ``parameters`` cell.
    scale : str, optional
        Shorthand for ``parameters["scale"]``; one of :data:`transferlib.config.SCALES`.
    output : str or Path, optional
        Executed notebook to write (``.ipynb``); default ``runs/<name>_<scale>_<time>.ipynb``.
    kernel_name : str
        Jupyter kernel to execute with.
    notebooks_dir : Path
        Where notebook names are looked up.
    progress : bool
        Show papermill's progress bar.

    Raises
    ------
    ValueError
        Unknown scale, a parameter the notebook does not declare, or an output that is not ``.ipynb``.
    papermill.PapermillExecutionError
        If a cell fails (the partly executed notebook is still written to ``output``).
    """
    import papermill

    source = find_notebook(notebook, notebooks_dir)
    params = dict(parameters or {})
    if scale is not None:
        params["scale"] = scale
    if "scale" in params:
        check_scale(params["scale"])
    declared = notebook_parameters(source)
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise ValueError(
            f"{source.name} has no parameter(s) {', '.join(unknown)}; it declares {', '.join(declared)}"
        )
    # Without a scale parameter the notebook reads $TRANSFERLIB_SCALE, else the default.
    run_scale = params.get("scale", os.environ.get("TRANSFERLIB_SCALE", DEFAULT_SCALE))
    out = Path(output) if output is not None else default_output(source, run_scale)
    if out.suffix != ".ipynb":
        raise ValueError(f"output must be an .ipynb file so the .md source is never overwritten, got {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(
        read_notebook(source, kernel_name),
        str(out),
        parameters=params,
        kernel_name=kernel_name,
        cwd=str(source.resolve().parent),
        progress_bar=progress,
    )
    return out


def _directory_size(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def cache_info(cache_dir: str | Path | None = None) -> str:
    """Describe the cache directory: its path, and files and size per top-level entry."""
    root = cache_root(cache_dir)
    lines = [f"cache directory {root}"]
    total_files = total_bytes = 0
    for entry in sorted(root.iterdir()):
        n, size = _directory_size(entry) if entry.is_dir() else (1, entry.stat().st_size)
        total_files += n
        total_bytes += size
        lines.append(f"  {entry.name:<40} {n:>7} files {size / 2**20:>10.1f} MiB")
    lines.append(f"  {'total':<40} {total_files:>7} files {total_bytes / 2**20:>10.1f} MiB")
    return "\n".join(lines)


def cache_clear(cache_dir: str | Path | None = None) -> Path:
    """Delete the cache directory and everything in it; return its path."""
    root = cache_root(cache_dir)
    shutil.rmtree(root)
    return root


def _cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def environment_report() -> pd.DataFrame:
    """Return the scale, hardware and package versions of this process as a two-column table."""
    import torch

    versions = {}
    for package in ("transferlib", "torch", "torchvision", "numpy", "scipy", "pandas", "scikit-learn",
                    "matplotlib", "jupyter-book", "myst-nb", "papermill"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    gpu = (
        ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        if torch.cuda.is_available()
        else "none"
    )
    rows = {
        "TRANSFERLIB_SCALE": os.environ.get("TRANSFERLIB_SCALE", "book (default)"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "CPU": _cpu_name(),
        "CPU cores available": len(os.sched_getaffinity(0)),
        "torch threads": torch.get_num_threads(),
        "GPU": gpu,
        **{f"{name} version": version for name, version in versions.items()},
    }
    return pd.DataFrame({"value": [str(v) for v in rows.values()]}, index=pd.Index(list(rows), name="item"))


def _format_parameters(declared: Mapping[str, Mapping[str, Any]]) -> str:
    return ", ".join(f"{name}={p['default']}" for name, p in declared.items()) or "(no parameters cell)"


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``python -m transferlib``."""
    parser = argparse.ArgumentParser(
        prog="transferlib", description="Rerun the transferlib book's notebooks and manage its cache."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute a notebook with papermill into runs/")
    run.add_argument("notebook", help="notebook name (see 'list') or path of a .md notebook")
    run.add_argument("--scale", choices=SCALES, help="scale preset (default: the notebook's)")
    run.add_argument(
        "-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
        help="set a parameter; VALUE is read as a Python literal when it is one, else as a string",
    )
    run.add_argument("-o", "--output", help="executed notebook (.ipynb); default runs/NAME_SCALE_TIME.ipynb")
    run.add_argument("--kernel", default=DEFAULT_KERNEL, help="Jupyter kernel name (default %(default)s)")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    sub.add_parser("list", help="list the notebooks and their parameters")
    sub.add_parser("env", help="print the scale, hardware and package versions")

    cache = sub.add_parser("cache", help="inspect or clear the cache directory")
    cache.add_argument("action", choices=("info", "clear"))
    cache.add_argument("--cache-dir", help="cache directory (default: $TRANSFERLIB_CACHE or ~/.cache/transferlib)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``transferlib`` and ``python -m transferlib``; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "run":
        try:
            out = run_notebook(
                args.notebook,
                {key: parse_value(value) for key, value in args.parameter},
                scale=args.scale,
                output=args.output,
                kernel_name=args.kernel,
                progress=not args.no_progress,
            )
        except (ValueError, FileNotFoundError) as error:
            print(f"transferlib run: {error}", file=sys.stderr)
            return 2
        print(f"executed notebook written to {out}")
    elif args.command == "list":
        for path in list_notebooks():
            print(f"{path.stem:<20} {_format_parameters(notebook_parameters(path))}")
    elif args.command == "env":
        print(environment_report().to_string())
    elif args.action == "info":
        print(cache_info(args.cache_dir))
    else:
        print(f"removed {cache_clear(args.cache_dir)}")
    return 0
