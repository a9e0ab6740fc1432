"""transferlib.config.run_parameters: the checks every notebook and ``transferlib run`` do first."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from transferlib import config
from transferlib.config import RunParams, run_parameters


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSFERLIB_CACHE", str(tmp_path / "cache"))


def test_defaults_and_valid_values_come_back_as_run_params(tmp_path: Path) -> None:
    assert run_parameters() == RunParams()
    params = run_parameters(
        "nce", scale="smoke", dataset="glyphs", device="cpu", seed=3, cache_dir=str(tmp_path / "c")
    )
    assert params == RunParams("smoke", "glyphs", None, "cpu", 3, str(tmp_path / "c"))
    assert not (tmp_path / "c").exists()  # checking creates nothing
    assert run_parameters(seed=np.int64(2)).seed == 2


@pytest.mark.parametrize(
    ("values", "error", "message"),
    [
        ({"epochs": 3}, TypeError, "unknown parameter\\(s\\) epochs; valid: scale, dataset"),
        ({"scale": "huge"}, ValueError, "unknown scale 'huge'"),
        ({"scale": None}, TypeError, "scale must be one of"),
        ({"seed": "abc"}, TypeError, "seed must be a non-negative integer, got 'abc'"),
        ({"seed": True}, TypeError, "seed must be a non-negative integer, got True"),
        ({"seed": 1.5}, TypeError, "seed must be"),
        ({"seed": -1}, ValueError, "seed must be a non-negative integer, got -1"),
        ({"device": 0}, TypeError, "device must be"),
        ({"device": "tpu"}, ValueError, "unknown device 'tpu'"),
        ({"dataset": "nope"}, ValueError, "unknown dataset 'nope'"),
        ({"dataset": "cifar10"}, ValueError, "not embedded in transferlib: set data_root"),
        ({"dataset": "cifar10", "data_root": 3}, TypeError, "data_root must be a folder path"),
        ({"cache_dir": 5}, TypeError, "cache_dir must be a folder path"),
    ],
)
def test_each_bad_value_is_named_in_one_line(values, error, message) -> None:
    with pytest.raises(error, match=message) as raised:
        run_parameters(**values)
    assert "\n" not in str(raised.value)


def test_experiment_support_is_checked_only_when_named() -> None:
    with pytest.raises(ValueError, match="experiment 'nce' does not support dataset 'digits'"):
        run_parameters("nce", dataset="digits")
    assert run_parameters(None, dataset="digits").dataset == "digits"
    with pytest.raises(ValueError, match="unknown experiment 'nope'"):
        run_parameters("nope")


@pytest.mark.skipif(config._cuda_driver_present(), reason="this machine has a CUDA driver")
@pytest.mark.parametrize("device", ["cuda", "cuda:1", "CUDA"])
def test_cuda_on_a_machine_without_a_driver(device: str) -> None:
    with pytest.raises(ValueError, match=f"device '{device}' is not available"):
        run_parameters(device=device)


def test_cache_dir_must_be_able_to_be_a_cache(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        run_parameters(cache_dir=str(tmp_path / "file"))
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="holds other files and is not a transferlib cache"):
        run_parameters(cache_dir=str(tmp_path / "theirs"))


def test_data_root_must_hold_the_dataset_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not an existing folder"):
        run_parameters(dataset="cifar10", data_root=str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="cifar10 files not found .*data_batch_1"):
        run_parameters(dataset="cifar10", data_root=str(tmp_path))
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch", "batches.meta"]:
        (base / name).write_bytes(pickle.dumps({}))
    assert run_parameters(dataset="cifar10", data_root=str(tmp_path)).data_root == str(tmp_path)
