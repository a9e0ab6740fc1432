"""Command line of transferlib: rerun the book's notebooks with other parameters, inspect them,
and manage the on-disk cache.

Usage::

    transferlib list
    transferlib run nce_attributes --scale full -p device cuda -p seed 1 [-o out.ipynb]
    transferlib cache info
    transferlib cache clear [--yes] [--data] [--models] [--features] [--results] [--scale smoke]
    transferlib env
    transferlib rank FOLDER --model efficientnet_lite0 --model resnet18=ckpt.pt --score logme
    transferlib --version

``run`` checks every parameter before anything starts (:func:`transferlib.config.run_parameters`),
converts the MyST markdown notebook with jupytext and executes it with papermill into ``runs/``
(or ``-o``); the markdown source is never written to, and the output of a failed run is removed.
The notebooks are those shipped inside the installed package (a build copies ``notebooks/`` into
it), or those of the source checkout for an editable install.

Exit status: 0 on success; 1 when a notebook fails, or ``cache clear`` finds nothing to delete or
is declined; 2 for a bad command line or parameter, reported in one line (``--debug`` shows the
traceback).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import importlib.metadata
import math
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from transferlib import __version__
from transferlib.cache import (
    CACHE_MARKER,
    ENV_VAR,
    KINDS,
    SCALE_ENV_VAR,
    cache_entries,
    cache_location,
    check_cache_dir,
    remove_entries,
    remove_stale_temporaries,
    temporary_files,
)
from transferlib.config import DEFAULT_SCALE, SCALES, RunParams, run_parameters

if TYPE_CHECKING:
    import pandas as pd

RUNS_DIR = Path("runs")
DEFAULT_KERNEL = "python3"
BOOK_EXTRA = 'pip install "transferlib[book]"'


def _notebooks_dir() -> Path:
    """The notebooks copied into an installed package, else those of the source checkout."""
    package = Path(__file__).resolve().parent
    packaged = package / "notebooks"
    return packaged if packaged.is_dir() else package.parent / "notebooks"


NOTEBOOKS_DIR = _notebooks_dir()


class NotebookError(RuntimeError):
    """A cell of an executed notebook raised; the message is the error's last line."""


class NothingDone(Exception):
    """A command that had nothing to do, or was declined (exit status 1)."""


def _import_book_extra(module: str) -> Any:
    """Import a package of the ``book`` extra, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            f"{module} is not installed: running notebooks needs the book extra, {BOOK_EXTRA}"
        ) from error


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
    jupytext = _import_book_extra("jupytext")
    nb = jupytext.read(path)
    nb.metadata["kernelspec"] = {
        "name": kernel_name,
        "display_name": kernel_name,
        "language": "python",
    }
    return nb


def notebook_parameters(path: Path) -> dict[str, dict[str, Any]]:
    """Return the parameters papermill infers from the notebook's ``parameters`` cell.

    Returns
    -------
    dict
        ``{name: {"name", "inferred_type_name", "default", "help"}}``.
    """
    papermill = _import_book_extra("papermill")
    return papermill.inspect_notebook(read_notebook(path))


def notebook_experiment(path: Path) -> str | None:
    """Return the experiment a notebook validates its parameters for, read from its source.

    It is the first argument of the notebook's ``run_parameters(...)`` or
    ``check_parameters(...)`` call; None if it has neither.
    """
    match = re.search(r"\b(?:run|check)_parameters\(\s*[\"'](\w+)[\"']", path.read_text())
    return match[1] if match else None


def default_output(notebook: Path, scale: str, runs_dir: Path = RUNS_DIR) -> Path:
    """Return ``runs/<notebook>_<scale>_<UTC time>.ipynb``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return runs_dir / f"{notebook.stem}_{scale}_{stamp}.ipynb"


@contextmanager
def _environment(variables: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a run (the kernel inherits them)."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _kernel_options() -> Iterator[dict[str, Any]]:
    """papermill options that connect to the kernel through sockets in a private folder.

    Over TCP (the default) ipykernel warns on every start that its traffic is unencrypted; IPC
    sockets are files only this user can reach, and need no port. Windows has no IPC transport.
    """
    if sys.platform == "win32":
        yield {}
        return
    from traitlets.config import Config

    with tempfile.TemporaryDirectory(prefix="transferlib-kernel-") as folder:
        config = Config()
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = os.path.join(folder, "kernel")
        yield {"config": config}


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

    Every parameter is checked before a kernel starts. The kernel runs with
    ``$TRANSFERLIB_SCALE`` set to the run's scale and ``$TRANSFERLIB_CACHE`` set to the run's
    cache folder (``cache_dir``, else the inherited one), so that everything the notebook caches
    goes there, and manifests record the scale.

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
        Show papermill's progress bar, and let the notebook show its own (False sets
        ``TQDM_DISABLE=1`` in the kernel's environment).

    Raises
    ------
    ValueError, TypeError, FileNotFoundError
        A bad parameter (see :func:`transferlib.config.run_parameters`), one the notebook does not
        declare, or an output that is not ``.ipynb``.
    ModuleNotFoundError
        If the ``book`` extra (papermill, jupytext) is not installed.
    NotebookError
        If a cell fails; the partly executed output is removed.
    """
    source = find_notebook(notebook, notebooks_dir)
    params = dict(parameters or {})
    if scale is not None:
        params["scale"] = scale
    declared = notebook_parameters(source)
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise ValueError(
            f"{source.name} has no parameter(s) {', '.join(unknown)}; it declares {', '.join(declared)}"
        )
    # Without a scale parameter the notebook reads $TRANSFERLIB_SCALE, else the default.
    run_scale = params.get("scale", os.environ.get(SCALE_ENV_VAR, DEFAULT_SCALE))
    if "scale" not in params and run_scale not in SCALES:
        raise ValueError(f"${SCALE_ENV_VAR} is {run_scale!r}; choose one of {', '.join(SCALES)}")
    # The kernel runs in the notebook's folder: folders given relative to here must not move.
    for name in ("cache_dir", "data_root"):
        if isinstance(params.get(name), str):
            params[name] = os.fspath(Path(params[name]).expanduser().absolute())
    common = {f.name: params[f.name] for f in dataclasses.fields(RunParams) if f.name in params}
    run = run_parameters(notebook_experiment(source), **{**common, "scale": run_scale})
    out = Path(output) if output is not None else default_output(source, run_scale)
    if out.suffix != ".ipynb":
        raise ValueError(
            f"output must be an .ipynb file so the .md source is never overwritten, got {out}"
        )
    papermill = _import_book_extra("papermill")
    # One cache root for everything the run caches, whether the notebook passes cache_dir on
    # or not; absolute, because the kernel runs in the notebook's folder.
    root = os.fspath(cache_location(run.cache_dir).absolute())
    variables = {SCALE_ENV_VAR: run_scale, ENV_VAR: root}
    if not progress:  # the notebook's own progress bars (tqdm) too, not only papermill's
        variables["TQDM_DISABLE"] = "1"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _environment(variables), _kernel_options() as options:
            papermill.execute_notebook(
                read_notebook(source, kernel_name),
                str(out),
                parameters=params,
                kernel_name=kernel_name,
                cwd=str(source.resolve().parent),
                progress_bar=progress,
                **options,
            )
    except papermill.PapermillExecutionError as error:
        out.unlink(missing_ok=True)
        evalue = " ".join(str(error.evalue).split())
        raise NotebookError(f"{source.name} failed: {error.ename}: {evalue}") from error
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return out


# ------------------------------------------------------------------------------ cache commands
def _size(n_bytes: int) -> str:
    power = min(int(math.log(max(n_bytes, 1), 1024)), 3)
    return (
        f"{n_bytes / 1024**power:.1f} {('B', 'KiB', 'MiB', 'GiB')[power]}"
        if power
        else f"{n_bytes} B"
    )


def _usage_lines(groups: Mapping[str, list[int]]) -> list[str]:
    return [
        f"  {name:<20} {len(sizes):>6} files {_size(sum(sizes)):>12}"
        for name, sizes in groups.items()
    ]


def cache_info(cache_dir: str | Path | None = None) -> str:
    """Describe the cache: its path, files and size per kind and per scale, temporary files.

    Stale temporary files of crashed writers are removed first (and reported); those of running
    writers are listed apart, outside the sizes.
    """
    root = check_cache_dir(cache_dir)
    if not root.is_dir():
        return f"no cache directory at {root} (nothing cached yet)"
    marked = "" if (root / CACHE_MARKER).is_file() else f" (no {CACHE_MARKER} marker yet)"
    removed = remove_stale_temporaries(root)
    entries = cache_entries(root)
    by_kind: dict[str, list[int]] = {kind: [] for kind in KINDS}
    by_scale: dict[str, list[int]] = {}
    for entry in entries:
        kind = (
            entry.kind
            if entry.kind in KINDS or entry.kind == "quarantine"
            else f"{entry.kind} (other)"
        )
        by_kind.setdefault(kind, []).append(entry.size)
        by_scale.setdefault(entry.scale or "(not recorded)", []).append(entry.size)
    lines = [f"cache directory {root.absolute()}{marked}", "by kind:", *_usage_lines(by_kind)]
    lines += _usage_lines({"total": [entry.size for entry in entries]})
    lines += ["by scale (from the manifests):", *_usage_lines(dict(sorted(by_scale.items())))]
    running = temporary_files(root)
    lines.append(
        f"temporary files: {len(running)} of running writers ({_size(sum(t.size for t in running))}); "
        f"removed {len(removed)} stale ({_size(sum(t.size for t in removed))}) left by crashed writers"
    )
    return "\n".join(lines)


def cache_clear(
    cache_dir: str | Path | None = None,
    *,
    kinds: Sequence[str] = (),
    scale: str | None = None,
    confirm: Callable[[str], bool] = lambda question: True,
) -> str:
    """Delete the cache directory, or only some kinds or one scale of it; return a report.

    Parameters
    ----------
    cache_dir : path, optional
        The cache (default: ``$TRANSFERLIB_CACHE`` or the default location).
    kinds : sequence of str
        Delete only artifacts of these kinds (:data:`transferlib.cache.KINDS`).
    scale : str, optional
        Delete only artifacts whose manifest records this scale.
    confirm : callable
        Asked ``confirm(question)`` before anything is deleted; nothing is deleted if it returns False.

    Raises
    ------
    ValueError
        If the folder is not a transferlib cache: only a folder carrying the marker is deleted.
    NothingDone
        If there is no cache folder, nothing matches, or ``confirm`` declined.
    """
    root = cache_location(cache_dir)
    if not root.exists():
        raise NothingDone(f"no cache directory at {root}: nothing to clear")
    if not (root / CACHE_MARKER).is_file():
        raise ValueError(
            f"{root} is not a transferlib cache (no {CACHE_MARKER} marker); not deleting it"
        )
    if not kinds and scale is None:
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        if not confirm(f"Delete the cache directory {root} ({_size(size)})?"):
            raise NothingDone("nothing deleted")
        shutil.rmtree(root)
        return f"removed {root} ({_size(size)})"
    selected = [
        e
        for e in cache_entries(root)
        if (not kinds or e.kind in kinds) and (scale is None or e.scale == scale)
    ]
    what = " and ".join(filter(None, [", ".join(kinds), scale and f"scale {scale}"]))
    if not selected:
        raise NothingDone(f"nothing to clear in {root} for {what}")
    size = sum(e.size for e in selected)
    if not confirm(f"Delete {len(selected)} files ({_size(size)}) of {what} from {root}?"):
        raise NothingDone("nothing deleted")
    removed, busy = remove_entries(selected)
    report = f"removed {len(removed)} files ({_size(sum(e.size for e in removed))}) of {what} from {root}"
    if busy:
        report += f"; left {len(busy)} in use by a running process"
    return report


def _ask(question: str) -> bool:
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:  # no terminal: never delete without an answer
        print(file=sys.stderr)
        return False


# ------------------------------------------------------------------------------ environment
def _cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def environment_report() -> pd.DataFrame:
    """Return the scale, hardware and package versions of this process as a two-column table."""
    import pandas as pd
    import torch

    versions = {}
    for package in (
        "transferlib",
        "torch",
        "torchvision",
        "numpy",
        "scipy",
        "pandas",
        "scikit-learn",
        "matplotlib",
        "jupyter-book",
        "myst-nb",
        "papermill",
    ):
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
    return pd.DataFrame(
        {"value": [str(v) for v in rows.values()]}, index=pd.Index(list(rows), name="item")
    )


def _format_parameters(declared: Mapping[str, Mapping[str, Any]]) -> str:
    return (
        ", ".join(f"{name}={p['default']}" for name, p in declared.items())
        or "(no parameters cell)"
    )


# ------------------------------------------------------------------------------ entry point
class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, without the usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``transferlib`` (and ``python -m transferlib``)."""
    parser = _Parser(
        prog="transferlib",
        description="Rerun the transferlib book's notebooks and manage its cache.",
    )
    parser.add_argument("--version", action="version", version=f"transferlib {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute a notebook with papermill into runs/")
    run.add_argument("notebook", help="notebook name (see 'list') or path of a .md notebook")
    run.add_argument("--scale", choices=SCALES, help="scale preset (default: the notebook's)")
    run.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "VALUE"),
        help="set a parameter; VALUE is read as a Python literal when it is one, else as a string",
    )
    run.add_argument(
        "-o", "--output", help="executed notebook (.ipynb); default runs/NAME_SCALE_TIME.ipynb"
    )
    run.add_argument(
        "--kernel", default=DEFAULT_KERNEL, help="Jupyter kernel name (default %(default)s)"
    )
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    sub.add_parser("list", help="list the notebooks and their parameters")
    sub.add_parser("env", help="print the scale, hardware and package versions")

    rank = sub.add_parser(
        "rank",
        help="rank candidate models for your own ImageFolder by transferability scores",
        description="Rank candidate models on FOLDER/<class>/<image> by transferability scores.",
    )
    rank.add_argument("folder", help="target images, one subfolder per class")
    rank.add_argument(
        "-m",
        "--model",
        action="append",
        required=True,
        help="candidate (repeat): efficientnet_lite0/1/2, ARCH=checkpoint.pt (torchvision "
        "architecture) or package.module:function",
    )
    rank.add_argument(
        "-s",
        "--score",
        action="append",
        help="score (repeat; default: logme, leep, parc); the first orders the table",
    )
    rank.add_argument("--layer", help="layer to take features from (default: penultimate)")
    rank.add_argument("--image-size", type=int, default=128, help="pixels (default 128)")
    rank.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    rank.add_argument("--out", help="folder for ranking.csv and ranking.png")
    rank.add_argument(
        "--cache-dir", help=f"cache directory (default: ${ENV_VAR} or ~/.cache/transferlib)"
    )
    rank.add_argument("--no-progress", action="store_true", help="hide the progress bars")

    cache = sub.add_parser("cache", help="inspect or clear the cache directory")
    cache.add_argument("action", choices=("info", "clear"))
    cache.add_argument(
        "--cache-dir", help=f"cache directory (default: ${ENV_VAR} or ~/.cache/transferlib)"
    )
    cache.add_argument("-y", "--yes", action="store_true", help="clear without asking")
    for kind in KINDS:
        cache.add_argument(f"--{kind}", action="store_true", help=f"clear only the {kind}")
    cache.add_argument("--scale", choices=SCALES, help="clear only what was built at this scale")
    return parser


def _run(args: argparse.Namespace) -> int:
    out = run_notebook(
        args.notebook,
        {key: parse_value(value) for key, value in args.parameter},
        scale=args.scale,
        output=args.output,
        kernel_name=args.kernel,
        progress=not args.no_progress,
    )
    print(f"executed notebook written to {out}")
    return 0


def _list(args: argparse.Namespace) -> int:
    notebooks = list_notebooks(NOTEBOOKS_DIR)
    if not notebooks:
        raise FileNotFoundError(f"no notebooks in {NOTEBOOKS_DIR}; this installation is incomplete")
    try:
        lines = [f"{p.stem:<20} {_format_parameters(notebook_parameters(p))}" for p in notebooks]
    except ModuleNotFoundError as error:
        print("\n".join(p.stem for p in notebooks))
        print(f"(parameters not shown: {error})", file=sys.stderr)
        return 0
    print("\n".join(lines))
    return 0


def _env(args: argparse.Namespace) -> int:
    print(environment_report().to_string())
    return 0


def _cache(args: argparse.Namespace) -> int:
    if args.action == "info":
        print(cache_info(args.cache_dir))
        return 0
    kinds = [kind for kind in KINDS if getattr(args, kind)]
    confirm = (lambda question: True) if args.yes else _ask
    print(cache_clear(args.cache_dir, kinds=kinds, scale=args.scale, confirm=confirm))
    return 0


def _rank(args: argparse.Namespace) -> int:
    from transferlib.rank import DEFAULT_SCORES, rank_models, write_report

    table = rank_models(
        args.folder,
        args.model,
        scores=args.score or DEFAULT_SCORES,
        layer=args.layer,
        image_size=args.image_size,
        device=args.device,
        cache_dir=args.cache_dir,
        progress=not args.no_progress,
    )
    print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    if args.out:
        for path in write_report(table, args.out, title=f"Candidate models on {args.folder}"):
            print(f"wrote {path}")
    return 0


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": _run,
    "list": _list,
    "env": _env,
    "cache": _cache,
    "rank": _rank,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``transferlib`` and ``python -m transferlib``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except (NotebookError, NothingDone, ValueError, TypeError, OSError, ImportError) as error:
        if args.debug:
            raise
        status = 1 if isinstance(error, (NotebookError, NothingDone)) else 2
        print(f"transferlib {args.command}: {' '.join(str(error).split())}", file=sys.stderr)
        return status
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"transferlib {args.command}: interrupted", file=sys.stderr)
        return 130
