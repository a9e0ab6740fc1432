"""On-disk cache shared by data generation, training and experiments.

Everything expensive in transferlib (a rendered dataset, a trained network, an extracted feature
matrix, one row of an experiment sweep) is stored under one cache directory, keyed by a hash of
the *full* configuration that produced it. Several processes may share one cache (two terminals,
a book build beside ``transferlib run``): each artifact is built once, and damaged files are
detected, moved aside and rebuilt instead of stopping every later run.

The cache directory is, in order of precedence: the ``cache_dir`` argument, the
``TRANSFERLIB_CACHE`` environment variable, ``$XDG_CACHE_HOME/transferlib``,
``~/.cache/transferlib``. Its layout::

    <root>/.transferlib-cache                        marker: only a marked folder is ever cleared
    <root>/<kind>/<key><suffix>                      an artifact, kind in KINDS
    <root>/.manifests/<kind>/<key><suffix>.manifest.json     its manifest, written last
    <root>/.locks/<kind>/<key><suffix>.lock          its build lock
    <root>/quarantine/<kind>/<time>-<pid>-<name>     damaged files, moved aside

Kind folders hold artifacts only. A result table inside the cache (``results/...csv``) has its
manifest and locks in the same mirrors; outside a cache they are hidden files beside it.

Rules
-----
Writing
    An artifact is built under its lock (the ``filelock`` package), written to a temporary file
    in the same folder and renamed into place; its manifest (length, SHA-256, kind, scale,
    creation time, description) is written the same way *after* it. A process that finds an
    artifact missing waits for the lock, then looks again, so it uses what another process has
    just built instead of building it a second time.
Reading
    An artifact counts only if its manifest exists and its length and checksum match; anything
    else (a missing, truncated, garbled or altered file, a missing or unreadable manifest, a file
    its ``load`` cannot read) is reported once as a :class:`CacheWarning` naming the file, moved
    to ``quarantine/`` and rebuilt. The repair happens under the lock, so concurrent readers never
    move aside what another process has just rebuilt.
Temporary files
    are named ``.<name>.<host>.<pid>.<random>.tmp``. One is stale, and removed by
    :func:`cache_root` (once per process and cache) and by ``transferlib cache info``, when its
    writer is on this host and no longer runs (the pid is gone, is a zombie, or belongs to a
    process started after the file was last written), or, when the writer cannot be checked
    (another host, another name format), when it is older than :data:`STALE_AFTER_SECONDS`.
Result tables
    :class:`ResultStore` is an append-only CSV whose every line carries a checksum; see there.
"""

from __future__ import annotations

import csv
import dataclasses
import enum
import hashlib
import io
import json
import os
import re
import secrets
import socket
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from filelock import FileLock, Timeout

__all__ = [
    "CACHE_MARKER",
    "KINDS",
    "CacheEntry",
    "CacheWarning",
    "ResultStore",
    "TemporaryFile",
    "artifact_path",
    "atomic_write_bytes",
    "cache_entries",
    "cache_location",
    "cache_root",
    "check_cache_dir",
    "config_key",
    "fingerprint_arrays",
    "load_json",
    "load_npz",
    "load_or_build",
    "load_torch",
    "remove_entries",
    "remove_stale_temporaries",
    "save_json",
    "save_npz",
    "save_torch",
    "temporary_files",
]

ENV_VAR = "TRANSFERLIB_CACHE"
#: Scale recorded in manifests when the caller gives none (set by ``make book`` and ``transferlib run``).
SCALE_ENV_VAR = "TRANSFERLIB_SCALE"
#: File whose presence marks a folder as a transferlib cache.
CACHE_MARKER = ".transferlib-cache"
#: Kinds of artifacts, one folder each.
KINDS: tuple[str, ...] = ("data", "models", "features", "results")
QUARANTINE = "quarantine"
# Folders of manifests and locks, mirroring the artifacts' paths.
MANIFESTS, LOCKS = ".manifests", ".locks"
MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_FORMAT = 1
#: Age after which a temporary file whose writer cannot be checked counts as stale.
STALE_AFTER_SECONDS = 24 * 3600

_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "localhost"
_TEMP_NAME = re.compile(
    r"^\.(?P<target>.+)\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.[0-9a-f]+\.tmp$"
)
# Roots whose stale temporary files this process has already removed.
_CLEANED: set[Path] = set()

T = TypeVar("T")


class CacheWarning(UserWarning):
    """A cache file was damaged: it was moved aside and its content is being recomputed."""


# ------------------------------------------------------------------------------ the cache folder
def _default_location() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "transferlib"


def cache_location(cache_dir: str | os.PathLike | None = None) -> Path:
    """Return where the cache directory is, without creating or checking it."""
    if cache_dir is None:
        cache_dir = os.environ.get(ENV_VAR)
    if cache_dir is None:
        return _default_location()
    return Path(cache_dir).expanduser()


def check_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Return the cache location if it can be used as a cache, without creating anything.

    A usable location is a marked cache, an empty or missing folder whose nearest existing parent
    is writable, or the default location (caches of older versions there carry no marker).

    Raises
    ------
    ValueError
        If the location is a file, an unmarked folder that holds other files, or cannot be
        created; the message is one line naming the folder.
    """
    root = cache_location(cache_dir)
    if (root / CACHE_MARKER).is_file():
        return root
    if root.exists():
        if not root.is_dir():
            raise ValueError(f"cache_dir {str(root)!r} is a file, not a folder")
        if any(root.iterdir()) and root != _default_location():
            raise ValueError(
                f"cache_dir {str(root)!r} holds other files and is not a transferlib cache (no "
                f"{CACHE_MARKER} marker); choose a new or empty folder"
            )
        existing = root
    else:
        existing = next(p for p in root.absolute().parents if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"cache_dir {str(root)!r} cannot be written ({existing} is not writable)")
    return root


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """Return the cache directory, creating it and its marker if needed.

    The first call of a process for a directory also removes the stale temporary files that
    crashed writers left behind (see the module docstring).

    Raises
    ------
    ValueError
        See :func:`check_cache_dir`.
    """
    root = check_cache_dir(cache_dir)
    marker = root / CACHE_MARKER
    if not marker.is_file():
        root.mkdir(parents=True, exist_ok=True)
        # Created in place, not renamed: a concurrent check must never see a temporary file in
        # an unmarked folder.
        try:
            with open(marker, "x") as handle:
                handle.write(
                    "transferlib cache: `transferlib cache clear` may delete this folder\n"
                )
        except FileExistsError:
            pass
    if root not in _CLEANED:
        remove_stale_temporaries(root)
        _CLEANED.add(root)
    return root


# ------------------------------------------------------------------------------ temporary files
@dataclasses.dataclass(frozen=True)
class TemporaryFile:
    """A temporary file of a writer: in progress, or left by a crashed one (``stale``)."""

    path: Path
    size: int
    stale: bool


def _process_started(pid: int) -> float | None:
    """Start time (epoch seconds) of a running, non-zombie process; None if unknown; -1 if dead."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime")
        )
    except (OSError, IndexError, StopIteration, ValueError):
        return None
    if fields[0] in ("Z", "X"):
        return -1.0
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def _writer_running(pid: int, written_at: float) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    started = _process_started(pid) if sys.platform.startswith("linux") else None
    if started is None:
        return True
    # A process that started after the file was last written is not its writer (a reused pid);
    # two seconds absorb the whole-second boot time.
    return 0 <= started <= written_at + 2


def temporary_files(root: str | os.PathLike) -> list[TemporaryFile]:
    """Temporary files of writers anywhere under ``root``, each marked stale or in progress."""
    now = time.time()
    found = []
    for path in sorted(Path(root).rglob(".*.tmp")):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue  # renamed into place meanwhile
        match = _TEMP_NAME.match(path.name)
        if match and match["host"] == _HOST:
            stale = not _writer_running(int(match["pid"]), stat.st_mtime)
        else:
            stale = now - stat.st_mtime > STALE_AFTER_SECONDS
        found.append(TemporaryFile(path, stat.st_size, stale))
    return found


def remove_stale_temporaries(root: str | os.PathLike) -> list[TemporaryFile]:
    """Delete the temporary files of crashed writers under ``root``; return what was deleted."""
    removed = []
    for temp in temporary_files(root):
        if temp.stale:
            temp.path.unlink(missing_ok=True)
            removed.append(temp)
    return removed


def _temporary_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{_HOST}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


@contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; when the block succeeds, sync it and rename it
    to ``path``, so readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _temporary_path(path)
    try:
        yield temp
        if not temp.is_file():
            raise RuntimeError(
                f"nothing was written to {temp} (save must write to the path it is given)"
            )
        with open(temp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    path = Path(path)
    with _replacing(path) as temp:
        temp.write_bytes(data)
    return path


# ------------------------------------------------------------------------------ keys
def _canonical(value: Any) -> Any:
    """Turn a configuration into plain JSON types with a deterministic layout."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            "__dataclass__": type(value).__name__,
            **{f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)},
        }
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (set, frozenset)):
        return sorted((_canonical(v) for v in value), key=repr)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, np.ndarray):
        # Large arrays (index sets) are represented by their content hash.
        return {"__ndarray__": fingerprint_arrays(value)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, float) and not np.isfinite(value):
        return repr(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"config_key cannot hash a value of type {type(value).__name__}: {value!r}")


def config_key(config: Any, length: int = 20) -> str:
    """Stable hexadecimal key of a configuration.

    Equal configurations give equal keys across processes and machines: mappings
    are sorted, tuples and lists are the same, NumPy scalars become Python
    numbers and arrays are replaced by a hash of their bytes, dtype and shape.
    """
    text = json.dumps(_canonical(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def fingerprint_arrays(*arrays: Any, length: int = 20) -> str:
    """Content hash of arrays (bytes, dtype and shape), for cache keys of data."""
    digest = hashlib.blake2b(digest_size=16)
    for array in arrays:
        if hasattr(array, "detach"):  # torch tensors, without importing torch
            array = array.detach().cpu().numpy()
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(memoryview(array).cast("B") if array.size else b"")
    return digest.hexdigest()[:length]


# ------------------------------------------------------------------------------ save / load
def save_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Write arrays to an uncompressed ``.npz`` file at exactly ``path``."""
    with open(path, "wb") as handle:  # a file object: np.savez would append ".npz" to a name
        np.savez(handle, **arrays)


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` file into memory."""
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    """``torch.save`` an object (a state dict, a tensor, ...) to ``path``."""
    import torch

    torch.save(obj, path)


def load_torch(path: str | os.PathLike, map_location: Any = None) -> Any:
    """Load an object written by :func:`save_torch` (tensors and plain containers only)."""
    import torch

    return torch.load(path, map_location=map_location, weights_only=True)


def save_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON to ``path`` (configurations are canonicalised first)."""
    Path(path).write_text(json.dumps(_canonical(obj), indent=2, sort_keys=True))


def load_json(path: str | os.PathLike) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text())


# ------------------------------------------------------------------------------ artifacts
def _sidecar(path: Path, folder: str, suffix: str) -> Path:
    """Where bookkeeping of ``path`` lives: mirrored under ``<root>/<folder>/`` inside a cache
    (so that kind folders hold artifacts only), hidden beside the file elsewhere."""
    root = _find_root(path)
    if root is None:
        return path.with_name(f".{path.name}{suffix}")
    return root / folder / path.absolute().relative_to(root).parent / f"{path.name}{suffix}"


def _manifest_path(path: Path) -> Path:
    return _sidecar(path, MANIFESTS, MANIFEST_SUFFIX)


def _lock(path: Path) -> FileLock:
    lock_path = _sidecar(path, LOCKS, ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(lock_path)


def _resolve_scale(scale: str | None) -> str | None:
    return scale if scale is not None else os.environ.get(SCALE_ENV_VAR) or None


def _digest(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _find_root(path: Path) -> Path | None:
    return next((p for p in path.absolute().parents if (p / CACHE_MARKER).is_file()), None)


def _move_aside(path: Path) -> Path:
    """Move a file and its manifest to the quarantine folder of its cache (a ``quarantine``
    folder beside it outside a cache), keeping the manifest's scale; return the new path."""
    base, root = path.absolute().parent, _find_root(path)
    folder = base / QUARANTINE if root is None else root / QUARANTINE / base.relative_to(root)
    folder.mkdir(parents=True, exist_ok=True)
    moved = folder / f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}-{path.name}"
    manifest = _manifest_path(path)
    for source, target in ((path, moved), (manifest, _manifest_path(moved))):
        if source.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
    return moved


def artifact_path(
    kind: str, key: str, suffix: str, cache_dir: str | os.PathLike | None = None
) -> Path:
    """Return ``cache_root(cache_dir)/kind/<key><suffix>`` after checking the three parts."""
    if kind not in KINDS:
        raise ValueError(f"unknown cache kind {kind!r}; choose one of {', '.join(KINDS)}")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", key):
        raise ValueError(f"cache key {key!r} must be letters, digits, '_', '.' or '-'")
    if not re.fullmatch(r"(\.[A-Za-z0-9]+)+", suffix) or suffix.endswith(
        (MANIFEST_SUFFIX, ".tmp", ".lock")
    ):
        raise ValueError(f"invalid artifact suffix {suffix!r}")
    return cache_root(cache_dir) / kind / f"{key}{suffix}"


def _problem(path: Path) -> str | None:
    """What is wrong with an artifact and its manifest; None if both are sound or both absent."""
    manifest_path = _manifest_path(path)
    if not manifest_path.exists():
        return "has no manifest (its writer did not finish)" if path.exists() else None
    try:
        manifest = json.loads(manifest_path.read_text())
        expected = int(manifest["bytes"]), str(manifest["sha256"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"has an unreadable manifest ({type(error).__name__}: {error})"
    if not path.exists():
        return "is missing although its manifest exists"
    size, digest = _digest(path)
    if size != expected[0]:
        return (
            f"has {size} bytes where its manifest records {expected[0]} (truncated or overwritten)"
        )
    if digest != expected[1]:
        return "does not match the checksum in its manifest (altered)"
    return None


def _read(path: Path, load: Callable[[Path], T]) -> tuple[bool, T | None, str | None]:
    """``(found, value, problem)`` for an artifact."""
    problem = _problem(path)
    if problem is None and path.exists():
        try:
            return True, load(path), None
        # Whatever a loader raises (BadZipFile, EOFError, RuntimeError...) makes the file unusable.
        except Exception as error:  # noqa: BLE001
            problem = f"could not be loaded ({type(error).__name__}: {error})"
    return False, None, problem


def load_or_build(
    kind: str,
    key: str,
    build: Callable[[], T],
    *,
    save: Callable[[Path, T], Any],
    load: Callable[[Path], T],
    suffix: str,
    cache_dir: str | os.PathLike | None = None,
    scale: str | None = None,
    description: str | Mapping[str, Any] | None = None,
) -> tuple[T, bool]:
    """Return the cached artifact ``kind/<key><suffix>``, building and storing it if needed.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    key : str
        File name stem, usually a :func:`config_key` of everything the artifact depends on.
    build : callable
        ``build() -> value``, called at most once per missing or damaged artifact, under the
        artifact's lock (other processes wait for it and then load what it built).
    save : callable
        ``save(path, value)`` writes the value to ``path`` (a temporary file, renamed when done).
    load : callable
        ``load(path) -> value`` reads a verified file.
    suffix : str
        File extension, e.g. ``".npz"``.
    cache_dir : path-like, optional
        Cache root (see :func:`cache_root`).
    scale : str, optional
        Scale the artifact was built for, recorded in the manifest for ``transferlib cache``;
        default ``$TRANSFERLIB_SCALE``.
    description : str or mapping, optional
        What the artifact is, recorded in the manifest (a mapping as JSON).

    Returns
    -------
    value, from_cache : tuple
        ``from_cache`` is False when this call built the value.

    Warns
    -----
    CacheWarning
        Once per damaged artifact, naming the file and the problem, when it is moved aside.
    """
    path = artifact_path(kind, key, suffix, cache_dir)
    found, value, _ = _read(path, load)
    if found:
        return value, True
    with _lock(path):
        # Another process may have built it, or repaired it, while this one waited.
        found, value, problem = _read(path, load)
        if found:
            return value, True
        if problem is not None:
            moved = _move_aside(path)
            warnings.warn(
                f"cache file {path} {problem}; moved to {moved} and rebuilt",
                CacheWarning,
                stacklevel=2,
            )
        value = build()
        with _replacing(path) as temp:
            save(temp, value)
            size, digest = _digest(temp)
        manifest = {
            "format": MANIFEST_FORMAT,
            "kind": kind,
            "key": key,
            "file": path.name,
            "bytes": size,
            "sha256": digest,
            "scale": _resolve_scale(scale),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "description": _canonical(description),
        }
        atomic_write_bytes(_manifest_path(path), json.dumps(manifest, indent=2).encode())
    return value, False


# ------------------------------------------------------------------------------ inventory
@dataclasses.dataclass(frozen=True)
class CacheEntry:
    """One artifact or result table of a cache, with its manifest.

    Attributes
    ----------
    path : Path
        The artifact.
    kind : str
        Its top-level folder: one of :data:`KINDS`, ``"quarantine"``, or another folder name.
    scale : str or None
        The scale its manifest records (None: none recorded, or no manifest).
    size : int
        Bytes of the artifact and its manifest.
    """

    path: Path
    kind: str
    scale: str | None
    size: int


def _is_bookkeeping(relative: Path) -> bool:
    """The marker, manifests, locks and temporary files (hidden names) are no entries."""
    return relative.name.endswith(MANIFEST_SUFFIX) or any(
        part.startswith(".") for part in relative.parts
    )


def cache_entries(root: str | os.PathLike) -> list[CacheEntry]:
    """Every artifact under ``root`` (temporary and lock files excluded), sorted by path."""
    root = Path(root)
    entries = []
    files = (p for p in root.rglob("*") if p.is_file())
    for path in sorted(p for p in files if not _is_bookkeeping(p.relative_to(root))):
        manifest_path = _manifest_path(path)
        size = path.stat().st_size
        scale = None
        if manifest_path.is_file():
            size += manifest_path.stat().st_size
            try:
                scale = json.loads(manifest_path.read_text()).get("scale")
            except (OSError, ValueError, AttributeError):
                pass
        relative = path.relative_to(root)
        kind = relative.parts[0] if len(relative.parts) > 1 else "."
        entries.append(CacheEntry(path, kind, scale, size))
    return entries


def remove_entries(entries: Iterable[CacheEntry]) -> tuple[list[CacheEntry], list[CacheEntry]]:
    """Delete entries with their manifests, each under its lock.

    Returns
    -------
    removed, busy : tuple of lists
        ``busy`` are the entries another process was building or appending to (left alone).
    """
    removed, busy = [], []
    for entry in entries:
        lock = _lock(entry.path)
        try:
            with lock.acquire(timeout=0):
                _manifest_path(entry.path).unlink(missing_ok=True)
                entry.path.unlink(missing_ok=True)
        except Timeout:
            busy.append(entry)
        else:
            removed.append(entry)
    return removed, busy


# ------------------------------------------------------------------------------ result tables
_CHECKSUM = "checksum"


def _csv_cell(value: Any) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    text = repr(value) if isinstance(value, float) else str(value)
    if "\n" in text or "\r" in text:
        raise ValueError(f"result cells cannot hold line breaks: {text!r}")
    return text


def _csv_line(cells: Iterable[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(list(cells))
    return buffer.getvalue()


def _row_checksum(header: str, cells: list[str]) -> str:
    """Checksum of a row bound to its header, so an edited column name is caught too."""
    return hashlib.sha256((header + _csv_line(cells)).encode()).hexdigest()[:16]


class ResultStore:
    """Append-only table of per-task results, one checksummed CSV line per finished task.

    Experiments call :meth:`has` before running a task and :meth:`append` right after it, so an
    interrupted sweep loses at most the task in progress, and a rerun computes only what is
    missing. Several processes may share one store:

    * :meth:`append` takes the store's file lock, reads what others appended, and writes the
      header (once, by whoever appends first) and the row in one ``write``; a row whose key is
      already stored is not written again (``append`` returns False);
    * every line ends with a checksum of the header and the row: a garbled or edited line is
      reported once as a :class:`CacheWarning` naming the file and line, moved to a
      ``quarantine`` folder and dropped, so its task is recomputed; a file whose header is bad
      (or that an older transferlib wrote without checksums) is moved aside whole;
    * a last line without its newline (a writer killed mid-line) is ignored, and cut off by the
      next append;
    * :meth:`task_lock` gives one lock per task, so that processes can split a sweep::

          for task in tasks:
              with store.task_lock(task):
                  store.refresh()
                  if not store.has(task):
                      store.append({**task, **run(task)})

    Rows keep the order in which they were appended; sort by the key columns for an order that
    does not depend on which process finished first.

    Parameters
    ----------
    path : path-like
        The CSV file (created with a header on the first append).
    key_columns : sequence of str
        Columns that identify a task; :meth:`has` and :meth:`completed_keys` look only at these.
    scale : str, optional
        Scale recorded in the table's manifest for ``transferlib cache``; default
        ``$TRANSFERLIB_SCALE``.
    """

    def __init__(
        self, path: str | os.PathLike, key_columns: Iterable[str], *, scale: str | None = None
    ):
        self.path = Path(path)
        self.key_columns = tuple(key_columns)
        if not self.key_columns:
            raise ValueError("ResultStore needs at least one key column")
        self.scale = _resolve_scale(scale)
        # Fixed once: whoever opens the store later looks in the same places.
        self._lock, self._manifest = _lock(self.path), _manifest_path(self.path)
        self._task_locks = _sidecar(self.path, LOCKS, ".tasks")
        self._reset()
        self.refresh()

    # -- reading ------------------------------------------------------------------------------
    def _reset(self) -> None:
        self._header: str | None = None
        self._columns: list[str] | None = None
        self._rows: list[list[str]] = []
        self._keys: set[tuple[str, ...]] = set()
        self._offset = 0
        self._lines = 0
        self._identity: tuple[int, int] | None = None

    def _parse_header(self, line: bytes) -> str:
        try:
            text = line.decode()
            (cells,) = list(csv.reader([text[:-1]]))
        except (UnicodeDecodeError, csv.Error, ValueError):
            raise ValueError("its header is not a CSV line") from None
        if not cells or cells[-1] != _CHECKSUM or len(set(cells)) != len(cells):
            raise ValueError(
                f"its header has no '{_CHECKSUM}' column (written by an older transferlib?)"
            )
        missing = [c for c in self.key_columns if c not in cells[:-1]]
        if missing:
            raise ValueError(f"its header lacks the key column(s) {', '.join(missing)}")
        self._columns = cells[:-1]
        return text

    def _parse_row(self, line: bytes) -> list[str]:
        try:
            (cells,) = list(csv.reader([line.decode()[:-1]]))
        except UnicodeDecodeError:
            raise ValueError("not UTF-8 text (garbled bytes)") from None
        except (csv.Error, ValueError):
            raise ValueError("not a CSV line") from None
        if len(cells) != len(self._columns) + 1:
            raise ValueError(f"{len(cells)} cells instead of {len(self._columns) + 1}")
        if _row_checksum(self._header, cells[:-1]) != cells[-1]:
            raise ValueError("checksum mismatch (edited or garbled)")
        key = self._row_key(cells[:-1])
        if key in self._keys:
            raise ValueError(f"duplicate of the row for {dict(zip(self.key_columns, key))}")
        return cells[:-1]

    def _row_key(self, cells: list[str]) -> tuple[str, ...]:
        return tuple(cells[self._columns.index(c)] for c in self.key_columns)

    def _consume(self, data: bytes) -> tuple[str | None, list[tuple[int, bytes, str]]]:
        """Parse complete lines read at the current offset; return (file problem, bad lines)."""
        bad = []
        for line in data.splitlines(keepends=True):
            self._lines += 1
            self._offset += len(line)
            if self._header is None:
                try:
                    self._header = self._parse_header(line)
                except ValueError as error:
                    return str(error), bad
                continue
            try:
                cells = self._parse_row(line)
            except ValueError as error:
                bad.append((self._lines, line, str(error)))
                continue
            self._rows.append(cells)
            self._keys.add(self._row_key(cells))
        return None, bad

    def _read_new(self) -> tuple[str | None, list[tuple[int, bytes, str]], int]:
        """Read what was appended since the last read; return (file problem, bad lines, torn bytes)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._reset()
            return None, [], 0
        if (stat.st_dev, stat.st_ino) != self._identity or stat.st_size < self._offset:
            self._reset()  # replaced (repaired, cleared) by another process: read it all again
            self._identity = (stat.st_dev, stat.st_ino)
        with open(self.path, "rb") as handle:
            handle.seek(self._offset)
            data = handle.read()
        complete = data[: data.rfind(b"\n") + 1]
        problem, bad = self._consume(complete)
        return problem, bad, len(data) - len(complete)

    def refresh(self) -> None:
        """Read the rows other processes appended since the last read (and repair damage)."""
        problem, bad, _ = self._read_new()
        if problem is not None or bad:
            self._repair()

    def _repair(self) -> None:
        """Under the lock, move aside a bad file or its bad lines and warn once about them."""
        with self._lock:
            self._reset()
            problem, bad, torn = self._read_new()
            if torn:
                os.truncate(self.path, self._offset)  # a line cut short by a killed writer
            if problem is None and bad and not self._rows:
                # Checksums cover the header: an edited column name fails every row.
                problem = "no row matches its checksum (the header or every row was altered)"
            if problem is None and not bad:
                return
            if problem is not None:
                moved = _move_aside(self.path)
                message = f"result table {self.path} is unusable: {problem}; moved to {moved}"
                self._reset()
            else:
                moved = self._reject(bad)
                lines = "; ".join(f"line {number}: {reason}" for number, _, reason in bad)
                message = (
                    f"result table {self.path}: dropped {len(bad)} damaged row(s) ({lines}); "
                    f"moved to {moved}, their tasks will be recomputed"
                )
                kept = self._header + "".join(
                    _csv_line([*cells, _row_checksum(self._header, cells)]) for cells in self._rows
                )
                atomic_write_bytes(self.path, kept.encode())
                self._reset()
                self._read_new()
            warnings.warn(message, CacheWarning, stacklevel=3)

    def _reject(self, bad: list[tuple[int, bytes, str]]) -> Path:
        rejected = self.path.with_name(f"{self.path.name}.rejected")
        rejected.write_bytes(b"".join(line for _, line, _ in bad))
        return _move_aside(rejected)

    # -- public -------------------------------------------------------------------------------
    def _key(self, row: Mapping[str, Any]) -> tuple[str, ...]:
        try:
            return tuple(_csv_cell(row[c]) for c in self.key_columns)
        except KeyError as err:
            raise ValueError(f"row lacks key column {err.args[0]!r}") from None

    def has(self, key: Mapping[str, Any]) -> bool:
        """Whether a row with these key-column values was seen (at the last read or append)."""
        return self._key(key) in self._keys

    def completed_keys(self) -> set[tuple[str, ...]]:
        """Key tuples (as stored, i.e. strings) of every finished task seen so far."""
        return set(self._keys)

    def task_lock(self, key: Mapping[str, Any]) -> FileLock:
        """A file lock for one task (not acquired), so that processes sharing the store split
        the work: hold it while checking :meth:`has` after :meth:`refresh` and computing."""
        self._task_locks.mkdir(parents=True, exist_ok=True)
        return FileLock(self._task_locks / f"{config_key(list(self._key(key)))}.lock")

    def append(self, row: Mapping[str, Any]) -> bool:
        """Store one finished task; return False (writing nothing) if its key is already stored.

        Raises
        ------
        ValueError
            If the row lacks a key column, or its columns differ from the stored ones.
        """
        key = self._key(row)
        cells_by_column = {column: _csv_cell(value) for column, value in row.items()}
        if _CHECKSUM in cells_by_column:
            raise ValueError(f"'{_CHECKSUM}' is reserved for the row checksum")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            problem, bad, torn = self._read_new()
            if problem is not None or bad:
                self._repair()
            elif torn:
                os.truncate(self.path, self._offset)
            if key in self._keys:
                return False
            text = ""
            if self._header is None:
                self._columns = list(cells_by_column)
                header = _csv_line([*self._columns, _CHECKSUM])
                text = header
            elif set(cells_by_column) != set(self._columns):
                raise ValueError(
                    f"row columns {sorted(cells_by_column)} differ from the store's "
                    f"{sorted(self._columns)}"
                )
            else:
                header = self._header
            cells = [cells_by_column[c] for c in self._columns]
            text += _csv_line([*cells, _row_checksum(header, cells)])
            with open(self.path, "ab") as handle:
                handle.write(text.encode())
                handle.flush()
                os.fsync(handle.fileno())
            if self._header is None:
                self._write_manifest()
            self._read_new()
        return True

    def _write_manifest(self) -> None:
        manifest = {
            "format": MANIFEST_FORMAT,
            "kind": "results",
            "file": self.path.name,
            "key_columns": list(self.key_columns),
            "scale": self.scale,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        atomic_write_bytes(self._manifest, json.dumps(manifest, indent=2).encode())

    def table(self) -> pd.DataFrame:
        """All stored rows, after a :meth:`refresh`, as a DataFrame (numbers parsed back from text)."""
        self.refresh()
        if self._columns is None:
            return pd.DataFrame(columns=list(self.key_columns))
        text = _csv_line(self._columns) + "".join(_csv_line(cells) for cells in self._rows)
        return pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=["nan", "NaN", ""])

    def __len__(self) -> int:
        return len(self._keys)
