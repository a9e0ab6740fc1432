"""Tests of the on-disk cache: stable keys, atomic writes, resumable result stores."""

from dataclasses import dataclass

import numpy as np
import pytest

from transferlib import cache


@dataclass(frozen=True)
class _Config:
    model: str
    epochs: int
    classes: tuple


def test_cache_root_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLIB_CACHE", str(tmp_path / "env"))
    assert cache.cache_root() == tmp_path / "env"
    assert cache.cache_root(tmp_path / "arg") == tmp_path / "arg"
    assert (tmp_path / "arg").is_dir()
    monkeypatch.delenv("TRANSFERLIB_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_root() == tmp_path / "xdg" / "transferlib"


def test_config_key_is_stable_and_sensitive():
    a = {"b": 1, "a": np.float64(0.5), "cfg": _Config("resnet20", 3, (1, 2))}
    b = {"cfg": _Config("resnet20", 3, (1, 2)), "a": 0.5, "b": np.int64(1)}
    assert cache.config_key(a) == cache.config_key(b)
    assert cache.config_key(a) != cache.config_key({**a, "b": 2})
    assert cache.config_key(a) != cache.config_key({**a, "cfg": _Config("resnet20", 4, (1, 2))})
    # Arrays are keyed by content, dtype and shape.
    x = np.arange(6)
    assert cache.config_key({"idx": x}) == cache.config_key({"idx": x.copy()})
    assert cache.config_key({"idx": x}) != cache.config_key({"idx": x.reshape(2, 3)})
    assert cache.config_key({"idx": x}) != cache.config_key({"idx": x.astype(np.int32)})


def test_config_key_rejects_unhashable_objects():
    with pytest.raises(TypeError, match="object"):
        cache.config_key({"x": object()})


def test_save_and_load_helpers_round_trip(tmp_path):
    arrays = {"features": np.random.default_rng(0).normal(size=(4, 3)), "labels": np.arange(4)}
    cache.save_npz(tmp_path / "f.tmp", arrays)  # writes exactly the path it is given
    loaded = cache.load_npz(tmp_path / "f.tmp")
    np.testing.assert_array_equal(loaded["features"], arrays["features"])
    cache.save_json(tmp_path / "c.json", {"k": (1, 2)})
    assert cache.load_json(tmp_path / "c.json") == {"k": [1, 2]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json", "f.tmp"]


def test_failed_build_or_save_leaves_nothing_behind(tmp_path):
    def explode(path, value):
        path.write_bytes(b"partial")
        raise RuntimeError("interrupted")

    for build, save in ((lambda: 1 / 0, cache.save_json), (lambda: {"a": 1}, explode)):
        with pytest.raises((ZeroDivisionError, RuntimeError)):
            cache.load_or_build(
                "results",
                "k",
                build,
                save=save,
                load=cache.load_json,
                suffix=".json",
                cache_dir=tmp_path,
            )
    assert not (tmp_path / "results" / "k.json").exists()
    assert not list(tmp_path.rglob("*.tmp"))
    value, from_cache = cache.load_or_build(
        "results",
        "k",
        lambda: {"a": 1},
        save=cache.save_json,
        load=cache.load_json,
        suffix=".json",
        cache_dir=tmp_path,
    )
    assert value == {"a": 1} and not from_cache
    assert cache.load_or_build(
        "results",
        "k",
        lambda: 1 / 0,
        save=cache.save_json,
        load=cache.load_json,
        suffix=".json",
        cache_dir=tmp_path,
    ) == (value, True)


def test_result_store_resumes_and_ignores_partial_line(tmp_path):
    path = tmp_path / "rows.csv"
    store = cache.ResultStore(path, key_columns=("source", "target"))
    store.append({"source": "bold", "target": "serif", "error": 0.25})
    store.append({"source": "bold", "target": "digit", "error": 0.125})
    # Simulate a crash in the middle of writing a third row.
    with open(path, "a") as handle:
        handle.write("bold,italic,0.3")
    reopened = cache.ResultStore(path, key_columns=("source", "target"))
    assert reopened.has({"source": "bold", "target": "serif"})
    assert not reopened.has({"source": "bold", "target": "italic"})
    assert len(reopened) == 2
    reopened.append({"source": "bold", "target": "italic", "error": 0.5})
    table = reopened.table()
    assert list(table["target"]) == ["serif", "digit", "italic"]
    assert table["error"].tolist() == [0.25, 0.125, 0.5]


def test_result_store_rejects_mismatched_rows(tmp_path):
    store = cache.ResultStore(tmp_path / "rows.csv", key_columns=("task",))
    store.append({"task": 1, "accuracy": 0.9})
    with pytest.raises(ValueError, match="columns"):
        store.append({"task": 2, "f1": 0.8})
    with pytest.raises(ValueError, match="key column"):
        store.append({"accuracy": 0.8})
    assert store.has({"task": 1}) and not store.has({"task": 2})


def test_fingerprint_arrays_accepts_torch_tensors():
    torch = pytest.importorskip("torch")
    values = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert cache.fingerprint_arrays(values) == cache.fingerprint_arrays(torch.from_numpy(values))
    assert cache.fingerprint_arrays(values) != cache.fingerprint_arrays(values + 1)
