"""Damaged cache files are detected, reported once, moved aside and recomputed; stale temporary
files of killed writers are removed; only a marked folder is treated as a cache."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from transferlib import cache, cli
from transferlib.cache import CacheWarning, ResultStore
from transferlib.config import run_parameters
from transferlib.data import TaskData, load_glyphs
from transferlib.experiments.sources import Network, network_outputs
from transferlib.experiments.sweep import run_sweep
from transferlib.training import train_cached


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return cache.cache_root(tmp_path / "cache")


def _task(seed: int = 0) -> TaskData:
    rng = np.random.default_rng(seed)
    labels = np.arange(32) % 2
    images = rng.integers(0, 60, size=(32, 3, 16, 16), dtype=np.uint8)
    images[labels == 1, :, :8] += 150
    return TaskData(images=images, labels=labels, class_names=("a", "b"), name="toy")


def _train(root: Path):
    data = _task()
    return train_cached(
        "small_cnn",
        data,
        data,
        epochs=1,
        lr=0.05,
        batch_size=16,
        device="cpu",
        cache_dir=root,
        progress=False,
    )


def _only(kind: str, root: Path, suffix: str) -> Path:
    (path,) = (root / kind).glob(f"*{suffix}")
    return path


def _quarantined(root: Path) -> list[str]:
    folder = root / cache.QUARANTINE
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _warnings_once(call, match: str):
    """Run ``call`` twice: the first run warns exactly once (matching), the second not at all."""
    with warnings.catch_warnings(record=True) as first:
        warnings.simplefilter("always")
        value = call()
    messages = [str(w.message) for w in first if issubclass(w.category, CacheWarning)]
    assert len(messages) == 1, messages
    assert re.search(match, messages[0]), messages[0]
    with warnings.catch_warnings(record=True) as second:
        warnings.simplefilter("always")
        call()
    assert not [w for w in second if issubclass(w.category, CacheWarning)]
    return value, messages[0]


# ------------------------------------------------------------------------------ artifacts
@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "truncated"),
        (lambda p: cache.save_torch(p, {"state_dict": {}, "history": {}}), "bytes|altered"),
        (lambda p: cache._manifest_path(p).unlink(), "no manifest"),
        (lambda p: cache._manifest_path(p).write_text("{garbled"), "unreadable manifest"),
    ],
    ids=["truncated-pt", "overwritten-weights", "missing-manifest", "garbled-manifest"],
)
def test_damaged_model_is_reported_once_moved_aside_and_retrained(root, damage, problem):
    first = _train(root)
    path = _only("models", root, ".pt")
    damage(path)
    retrained, message = _warnings_once(lambda: _train(root), problem)
    assert str(path) in message and "moved to" in message
    assert not retrained.from_cache
    assert any(name.endswith(path.name) for name in _quarantined(root))
    (moved,) = [e for e in cache.cache_entries(root) if e.kind == cache.QUARANTINE]
    assert moved.path.name.endswith(path.name)
    for name, value in first.model.state_dict().items():
        torch.testing.assert_close(retrained.model.state_dict()[name], value, rtol=0, atol=0)
    assert _train(root).from_cache


def test_truncated_glyphs_npz_is_rendered_again(root):
    first = load_glyphs(n_images=120, image_size=16, cache_dir=root)
    path = Path(first.metadata["cache_path"])
    assert path.parent == root / "data"
    path.write_bytes(path.read_bytes()[:1000])
    again, message = _warnings_once(
        lambda: load_glyphs(n_images=120, image_size=16, cache_dir=root), "truncated"
    )
    assert str(path) in message
    assert not again.metadata["from_cache"]
    assert again.images.tobytes() == first.images.tobytes()
    assert load_glyphs(n_images=120, image_size=16, cache_dir=root).metadata["from_cache"]


def test_truncated_features_file_is_extracted_again(root):
    trained = _train(root)
    network = Network(
        name="toy", role="source", architecture="small_cnn", key=trained.key, model=trained.model
    )
    run = run_parameters(device="cpu", cache_dir=str(root))
    images = _task(1).images
    first = network_outputs(run, network, images, ("features",))
    path = _only("features", root, ".npy")
    path.write_bytes(path.read_bytes()[:-7])
    again, message = _warnings_once(
        lambda: network_outputs(run, network, images, ("features",)), "truncated"
    )
    assert str(path) in message
    np.testing.assert_array_equal(again["features"], first["features"])


def test_a_file_its_loader_cannot_read_is_rebuilt(root):
    def build():
        return {"a": 1}

    cache.load_or_build(
        "results",
        "x",
        build,
        save=cache.save_json,
        load=cache.load_json,
        suffix=".json",
        cache_dir=root,
    )

    def failing_load(path):
        raise EOFError("unexpected end of data")

    with pytest.warns(CacheWarning, match="could not be loaded \\(EOFError"):
        value, from_cache = cache.load_or_build(
            "results",
            "x",
            build,
            save=cache.save_json,
            load=failing_load,
            suffix=".json",
            cache_dir=root,
        )
    assert (value, from_cache) == ({"a": 1}, False)


def test_manifest_records_size_checksum_kind_scale_and_description(root, monkeypatch):
    monkeypatch.setenv("TRANSFERLIB_SCALE", "smoke")
    cache.load_or_build(
        "data",
        "k1",
        lambda: {"a": np.arange(3)},
        save=cache.save_npz,
        load=cache.load_npz,
        suffix=".npz",
        cache_dir=root,
        description="three numbers",
    )
    cache.load_or_build(
        "data",
        "k2",
        lambda: {"a": np.arange(3)},
        save=cache.save_npz,
        load=cache.load_npz,
        suffix=".npz",
        cache_dir=root,
        scale="full",
    )
    manifest_path = root / ".manifests" / "data" / "k1.npz.manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["kind"] == "data" and manifest["scale"] == "smoke"
    assert manifest["bytes"] == (root / "data" / "k1.npz").stat().st_size
    assert manifest["sha256"] == cache._digest(root / "data" / "k1.npz")[1]
    assert manifest["description"] == "three numbers" and manifest["created"].endswith("Z")
    assert {e.path.name: e.scale for e in cache.cache_entries(root)} == {
        "k1.npz": "smoke",
        "k2.npz": "full",
    }
    assert sorted(p.name for p in (root / "data").iterdir()) == ["k1.npz", "k2.npz"]


# ------------------------------------------------------------------------------ result tables
def _rows(path: Path) -> ResultStore:
    store = ResultStore(path, ["task"])
    for n in range(4):
        store.append({"task": f"t{n}", "error": n / 8, "note": f"run {n}"})
    return store


@pytest.mark.parametrize(
    ("damage", "line", "problem"),
    [
        (lambda raw: raw.replace(b"0.25", b"0.35"), 4, "checksum"),
        (lambda raw: raw.replace(b"run 1", b"r\xff\xfe 1"), 3, "UTF-8"),
        (lambda raw: raw.replace(b"t3,0.375", b"t3,0.375,9"), 5, "cells"),
    ],
    ids=["edited-number", "garbled-bytes", "extra-cell"],
)
def test_damaged_result_rows_are_dropped_once_and_recomputed(tmp_path, damage, line, problem):
    path = tmp_path / "rows.csv"
    intact = _rows(path).table()
    clean_bytes = path.read_bytes()
    path.write_bytes(damage(path.read_bytes()))
    store, message = _warnings_once(lambda: ResultStore(path, ["task"]), problem)
    assert str(path) in message and f"line {line}:" in message
    assert len(store) == 3 and (tmp_path / "quarantine").is_dir()
    # The damaged row is gone from the file: a resumed sweep recomputes exactly that task.
    recomputed = []

    def run(task):
        recomputed.append(task)
        n = int(task[1:])
        return {"task": task, "error": n / 8, "note": f"run {n}"}

    tasks = [f"t{n}" for n in range(4)]
    table = run_sweep(store, tasks, run, keys=lambda task: [{"task": task}], progress=False)
    assert recomputed == [f"t{line - 2}"]
    assert sorted(path.read_bytes().splitlines()) == sorted(clean_bytes.splitlines())
    sorted_table = table.sort_values("task").reset_index(drop=True)
    assert sorted_table.equals(intact)


def test_a_table_without_checksums_or_with_an_edited_header_is_moved_aside(tmp_path):
    legacy = tmp_path / "legacy.csv"
    legacy.write_text("task,error\nt0,0.5\nt0,0.5\n")  # the old format, duplicated by a race
    with pytest.warns(CacheWarning, match="legacy.csv is unusable: .*no 'checksum' column"):
        store = ResultStore(legacy, ["task"])
    assert len(store) == 0 and not legacy.exists()
    assert store.append({"task": "t0", "error": 0.5})

    edited = tmp_path / "edited.csv"
    _rows(edited)
    edited.write_bytes(edited.read_bytes().replace(b"task,error", b"task,eror", 1))
    with pytest.warns(CacheWarning, match="edited.csv is unusable: no row matches its checksum"):
        assert len(ResultStore(edited, ["task"])) == 0


def test_resume_after_a_torn_last_line_is_byte_identical(tmp_path):
    uninterrupted = tmp_path / "full.csv"
    _rows(uninterrupted)
    resumed = tmp_path / "resumed.csv"
    store = ResultStore(resumed, ["task"])
    for n in range(2):
        store.append({"task": f"t{n}", "error": n / 8, "note": f"run {n}"})
    with open(resumed, "ab") as handle:  # kill -9 in the middle of the third append
        handle.write(b"t2,0.25,run 2,5f3")
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)  # a torn line is expected, not damage
        store = ResultStore(resumed, ["task"])
        assert len(store) == 2
        for n in range(4):
            store.append({"task": f"t{n}", "error": n / 8, "note": f"run {n}"})
    assert resumed.read_bytes() == uninterrupted.read_bytes()


def test_append_refuses_a_key_already_written_by_another_store(tmp_path):
    path = tmp_path / "rows.csv"
    first, second = ResultStore(path, ["task"]), ResultStore(path, ["task"])
    assert first.append({"task": "a", "x": 1})
    assert not second.has({"task": "a"})  # not refreshed yet
    assert not second.append({"task": "a", "x": 2})  # ...but append reads before writing
    assert second.has({"task": "a"}) and len(path.read_text().splitlines()) == 2
    assert second.append({"task": "b", "x": 3})
    first.refresh()
    assert first.completed_keys() == {("a",), ("b",)}
    assert first.table()["x"].tolist() == [1, 3]


# ------------------------------------------------------------------------------ temporary files
WRITER = """
import sys, time
from transferlib import cache

def save(path, value):
    with open(path, "wb") as handle:
        handle.write(b"x" * 1_000_000)
        handle.flush()
        print("writing", flush=True)
        time.sleep(600)

cache.load_or_build("features", "big", lambda: 0, save=save, load=cache.load_json,
                    suffix=".npz", cache_dir=sys.argv[1])
"""


def test_temporary_file_of_a_killed_writer_is_removed_and_not_counted(root):
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout.readline().strip() == "writing"
        (temp,) = cache.temporary_files(root)
        assert not temp.stale and temp.path.name.startswith(".big.npz.")
        info = cli.cache_info(root)
        assert "1 of running writers (976.6 KiB)" in info and temp.path.exists()
        assert "total                     0 files" in info
    finally:
        writer.kill()
        writer.wait()
    info = cli.cache_info(root)
    assert "0 of running writers" in info and "removed 1 stale (976.6 KiB)" in info
    assert "total                     0 files" in info
    assert not temp.path.exists()


def test_staleness_of_temporary_files_written_elsewhere_or_by_a_reused_pid(root):
    day_ago = time.time() - cache.STALE_AFTER_SECONDS - 60
    other_host_old = root / "models" / ".a.pt.otherhost.12.0a1b2c3d.tmp"
    other_host_new = root / "models" / ".b.pt.otherhost.12.0a1b2c3d.tmp"
    old_format = root / "models" / ".c.pt.k3j4h5g6.tmp"
    other_host_old.parent.mkdir()
    for path in (other_host_old, other_host_new, old_format):
        path.write_bytes(b"x")
    os.utime(other_host_old, (day_ago, day_ago))
    os.utime(old_format, (day_ago, day_ago))
    # A pid that runs now but started after the file was last written is not its writer.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        reused = root / "models" / f".d.pt.{cache._HOST}.{sleeper.pid}.0a1b2c3d.tmp"
        reused.write_bytes(b"x")
        hour_ago = time.time() - 3600
        os.utime(reused, (hour_ago, hour_ago))
        removed = {t.path.name for t in cache.remove_stale_temporaries(root)}
    finally:
        sleeper.kill()
        sleeper.wait()
    assert removed == {other_host_old.name, old_format.name, reused.name}
    assert other_host_new.exists()


# ------------------------------------------------------------------------------ the cache folder
def test_cache_root_marks_new_folders_and_refuses_a_folder_of_other_files(tmp_path, monkeypatch):
    root = cache.cache_root(tmp_path / "new")
    assert (root / cache.CACHE_MARKER).is_file()
    (tmp_path / "empty").mkdir()
    assert (cache.cache_root(tmp_path / "empty") / cache.CACHE_MARKER).is_file()
    (tmp_path / "user" / "thesis.tex").parent.mkdir()
    (tmp_path / "user" / "thesis.tex").write_text("mine")
    with pytest.raises(ValueError, match="holds other files and is not a transferlib cache"):
        cache.cache_root(tmp_path / "user")
    assert not (tmp_path / "user" / cache.CACHE_MARKER).exists()
    with pytest.raises(ValueError, match="is a file"):
        cache.cache_root(tmp_path / "user" / "thesis.tex")
    # A cache of an older version at the default location has no marker: it is adopted.
    monkeypatch.delenv("TRANSFERLIB_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    (tmp_path / "xdg" / "transferlib" / "glyphs").mkdir(parents=True)
    assert (cache.cache_root() / cache.CACHE_MARKER).is_file()
