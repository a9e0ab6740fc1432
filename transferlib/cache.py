"""On-disk cache shared by data generation, training and experiments.

Everything expensive in transferlib (a rendered dataset, a trained network, an
extracted feature matrix, one row of an experiment sweep) is stored under one
cache directory, keyed by a hash of the *full* configuration that produced it.
Writes are atomic (temporary file in the same folder, then :func:`os.replace`),
so an interrupted run never leaves a half-written entry behind and a rerun
resumes where it stopped.

The cache directory is, in order of precedence: the ``cache_dir`` argument,
the ``TRANSFERLIB_CACHE`` environment variable, ``$XDG_CACHE_HOME/transferlib``,
``~/.cache/transferlib``.
"""

from __future__ import annotations

import csv
import dataclasses
import enum
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "ResultStore",
    "atomic_write_bytes",
    "cache_root",
    "config_key",
    "fingerprint_arrays",
    "load_json",
    "load_npz",
    "load_torch",
    "save_json",
    "save_npz",
    "save_torch",
]

ENV_VAR = "TRANSFERLIB_CACHE"


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """Return the cache directory, creating it if needed."""
    if cache_dir is None:
        cache_dir = os.environ.get(ENV_VAR)
    if cache_dir is None:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        cache_dir = Path(base) / "transferlib"
    root = Path(cache_dir).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


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


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    return _atomic_write(path, lambda handle: handle.write(data))


def _atomic_write(path: str | os.PathLike, write: Callable[[Any], Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """Atomically save arrays to an uncompressed ``.npz`` file."""
    return _atomic_write(path, lambda handle: np.savez(handle, **arrays))


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` file into memory."""
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def save_torch(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically ``torch.save`` an object (a state dict, a tensor, ...)."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def load_torch(path: str | os.PathLike, map_location: Any = None) -> Any:
    """Load an object written by :func:`save_torch` (tensors and plain containers only)."""
    import torch

    return torch.load(path, map_location=map_location, weights_only=True)


def save_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write JSON (configurations are canonicalised first)."""
    text = json.dumps(_canonical(obj), indent=2, sort_keys=True)
    return atomic_write_bytes(path, text.encode())


def load_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


class ResultStore:
    """Append-only table of per-task results, one CSV line per finished task.

    Experiments call :meth:`has` before running a task and :meth:`append` right
    after it, so an interrupted sweep loses at most the task in progress. Each
    row is written with a single ``write`` of a whole line on a file opened in
    append mode; a line cut short by a crash (no trailing newline) is ignored
    when reading and overwritten by the next append.

    Parameters
    ----------
    path : path-like
        The CSV file (created with a header on the first append).
    key_columns : sequence of str
        Columns that identify a task; :meth:`has` and :meth:`completed_keys`
        look only at these.
    """

    def __init__(self, path: str | os.PathLike, key_columns: Iterable[str], *, scale: str | None = None):
        self.path = Path(path)
        self.key_columns = tuple(key_columns)
        if not self.key_columns:
            raise ValueError("ResultStore needs at least one key column")
        self._columns: list[str] | None = None
        self._keys: set[tuple] = set()
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        raw = self.path.read_bytes()
        if raw and not raw.endswith(b"\n"):
            # Drop a partial last line left by an interrupted write.
            raw = raw[: raw.rfind(b"\n") + 1]
            atomic_write_bytes(self.path, raw)
        rows = list(csv.reader(io.StringIO(raw.decode())))
        if not rows:
            return
        self._columns = rows[0]
        missing = set(self.key_columns) - set(self._columns)
        if missing:
            raise ValueError(f"{self.path} has no key column(s) {sorted(missing)}")
        positions = [self._columns.index(c) for c in self.key_columns]
        self._keys = {tuple(row[i] for i in positions) for row in rows[1:]}

    def _key(self, row: Mapping[str, Any]) -> tuple:
        try:
            return tuple(_csv_cell(row[c]) for c in self.key_columns)
        except KeyError as err:
            raise ValueError(f"row lacks key column {err.args[0]!r}") from None

    def has(self, key: Mapping[str, Any]) -> bool:
        """Whether a row with these key-column values was stored."""
        return self._key(key) in self._keys

    def completed_keys(self) -> set[tuple]:
        """Key tuples (as stored, i.e. strings) of every finished task."""
        return set(self._keys)

    def append(self, row: Mapping[str, Any]) -> bool:
        """Store one finished task; its columns must match the existing ones."""
        key = self._key(row)
        if key in self._keys:
            return False
        if self._columns is None:
            self._columns = list(row)
            header = _csv_line(self._columns)
        else:
            header = ""
            if set(row) != set(self._columns):
                raise ValueError(
                    f"row columns {sorted(row)} differ from the store's {sorted(self._columns)}"
                )
        line = _csv_line([_csv_cell(row[c]) for c in self._columns])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", newline="") as handle:
            handle.write(header + line)
            handle.flush()
            os.fsync(handle.fileno())
        self._keys.add(key)
        return True

    def refresh(self) -> None:
        """Re-read the rows (other processes may have appended)."""
        self._columns, self._keys = None, set()
        self._load()

    def task_lock(self, key: Mapping[str, Any]) -> Any:
        """File lock of one task, held by the process computing it."""
        import filelock

        name = config_key(list(self._key(key)))
        return filelock.FileLock(self.path.parent / f".{self.path.name}.locks" / f"{name}.lock")

    def table(self) -> pd.DataFrame:
        """All stored rows as a DataFrame (numbers parsed back from text)."""
        if self._columns is None:
            return pd.DataFrame(columns=list(self.key_columns))
        return pd.read_csv(self.path, keep_default_na=False, na_values=["nan", "NaN", ""])

    def __len__(self) -> int:
        return len(self._keys)


def _csv_cell(value: Any) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _csv_line(cells: Iterable[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(list(cells))
    return buffer.getvalue()


def load_or_build(
    kind: str,
    key: str,
    build: Callable[[], Any],
    *,
    save: Callable[[Path, Any], Any],
    load: Callable[[Path], Any],
    suffix: str,
    cache_dir: str | os.PathLike | None = None,
    scale: str | None = None,
    description: Mapping[str, Any] | None = None,
) -> tuple[Any, bool]:
    """Load the artifact ``root/kind/<key><suffix>``, or build and store it; ``(value, from_cache)``."""
    path = cache_root(cache_dir) / kind / f"{key}{suffix}"
    if path.exists():
        return load(path), True
    value = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    save(path, value)
    return value, False
