"""``transferlib run`` fails fast and short: every parameter is checked before a kernel starts,
errors are one line with exit status 2, a failed run leaves no partial notebook behind."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from transferlib import cli, config

NOTEBOOK = """\
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

# A tiny notebook

```{code-cell} ipython3
:tags: [parameters]

scale = "book"
dataset = "glyphs"
data_root = None
device = "auto"
seed = 0
cache_dir = None
fail = False
```

```{code-cell} ipython3
from transferlib.config import run_parameters
from transferlib.data import load_glyphs

run_parameters("data", scale=scale, dataset=dataset, data_root=data_root, device=device,
               seed=seed, cache_dir=cache_dir)
glyphs = load_glyphs(n_images=110, image_size=8)  # no cache_dir: $TRANSFERLIB_CACHE decides
print(glyphs.metadata["cache_path"])
import os
print("TQDM_DISABLE=" + str(os.environ.get("TQDM_DISABLE")))
if fail:
    raise RuntimeError("boom\\nsecond line")
```
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current folder and cache location, to check that a refused run writes nothing."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRANSFERLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TRANSFERLIB_SCALE", raising=False)
    return tmp_path


def _one_line_error(capsys: pytest.CaptureFixture[str], *fragments: str) -> str:
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err and "download=True" not in err
    for fragment in fragments:
        assert fragment in err, err
    return err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-p", "seed", "abc"], "seed must be a non-negative integer, got 'abc'"),
        (["-p", "seed", "-1"], "seed must be a non-negative integer, got -1"),
        (["-p", "dataset", "nope"], "unknown dataset 'nope'"),
        (["-p", "dataset", "cifar10"], "is not embedded in transferlib: set data_root"),
        (["-p", "device", "tpu"], "unknown device 'tpu'"),
        (["-p", "epochs", "3"], "data.md has no parameter(s) epochs"),
        (["-p", "cache_dir", "/dev/null"], "is a file, not a folder"),
    ],
)
def test_bad_parameters_stop_the_run_with_one_line_and_exit_2(workdir, capsys, argv, message):
    assert cli.main(["run", "data", *argv]) == 2
    _one_line_error(capsys, message)
    assert sorted(p.name for p in workdir.iterdir()) == []  # no cache, no runs/


def test_a_bad_option_is_one_line_without_the_usage_text(workdir, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "data", "--scale", "huge"])
    assert exit_.value.code == 2
    _one_line_error(capsys, "invalid choice: 'huge'", "--help")


def test_scale_from_the_environment_is_checked(workdir, capsys, monkeypatch):
    monkeypatch.setenv("TRANSFERLIB_SCALE", "huge")
    assert cli.main(["run", "data"]) == 2
    _one_line_error(capsys, "$TRANSFERLIB_SCALE is 'huge'")


def test_data_root_without_the_dataset_files_is_refused_naming_them(workdir, capsys):
    (workdir / "empty").mkdir()
    argv = ["run", "data", "-p", "dataset", "cifar10", "-p", "data_root", "empty"]
    assert cli.main(argv) == 2
    _one_line_error(capsys, "cifar10 files not found under", "data_batch_1", "batches.meta")


def test_an_unsupported_dataset_is_refused_before_the_notebook_starts(workdir, capsys):
    (workdir / "cifar").mkdir()
    argv = ["run", "nce_attributes", "-p", "dataset", "cifar10", "-p", "data_root", "cifar"]
    assert cli.main(argv) == 2
    _one_line_error(capsys, "experiment 'nce' does not support dataset 'cifar10'")


def test_debug_shows_the_traceback(workdir):
    with pytest.raises(TypeError, match="seed must be"):
        cli.main(["--debug", "run", "data", "-p", "seed", "abc"])


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == "transferlib 0.1.0"


def test_a_core_install_says_which_extra_to_install(workdir, capsys, monkeypatch):
    for module in ("papermill", "jupytext"):
        monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    assert cli.main(["run", "data"]) == 2
    _one_line_error(capsys, 'pip install "transferlib[book]"')
    assert cli.main(["list"]) == 0
    out, err = capsys.readouterr()
    assert "nce_attributes" in out.splitlines() and "transferlib[book]" in err


def test_list_without_notebooks_is_an_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "NOTEBOOKS_DIR", tmp_path)
    assert cli.main(["list"]) == 2
    _one_line_error(capsys, "no notebooks in")


@pytest.mark.skipif(config._cuda_driver_present(), reason="this machine has a CUDA driver")
def test_the_readme_gpu_command_fails_within_two_seconds_on_a_cpu_machine(tmp_path):
    env = {**os.environ, "TRANSFERLIB_CACHE": str(tmp_path / "cache")}
    argv = ["run", "nce_attributes", "--scale", "full", "-p", "device", "cuda"]
    probe = textwrap.dedent(f"""
        import sys
        from transferlib import cli
        status = cli.main({argv!r})
        print(status, "torch" in sys.modules)
    """)
    start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, "-m", "transferlib", *argv],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        (
            "transferlib run: device 'cuda' is not available: this machine has no CUDA driver "
            "(use device 'cpu' or 'auto')"
        )
    ]
    # Processor time, not wall time: other jobs on a shared machine must not fail the test.
    assert cpu < 2, f"took {cpu:.1f} s of processor time ({elapsed:.1f} s wall)"
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    # Fast by construction: the device check does not import torch when there is no driver.
    checked = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.stdout.split() == ["2", "False"], checked.stderr


@pytest.mark.slow
def test_run_keeps_everything_in_cache_dir_and_removes_a_failed_output(
    tmp_path, monkeypatch, capfd
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRANSFERLIB_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "default"))
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    notebook = tmp_path / "tiny.md"
    notebook.write_text(NOTEBOOK)
    argv = ["run", str(notebook), "--scale", "smoke", "--no-progress", "-p", "cache_dir", "mine"]

    assert cli.main([*argv, "-o", "ok.ipynb"]) == 0
    out, err = capfd.readouterr()
    assert "executed notebook written to ok.ipynb" in out
    assert "TCP" not in err and "WARNING" not in err, err  # the kernel's transport warning
    executed = (tmp_path / "ok.ipynb").read_text()
    assert str(tmp_path / "mine" / "data") in executed
    assert "TQDM_DISABLE=1" in executed  # --no-progress silences the notebook's bars too
    assert not (tmp_path / "default").exists()  # nothing went to the default cache
    (manifest,) = (tmp_path / "mine" / ".manifests" / "data").glob("*.manifest.json")
    assert '"scale": "smoke"' in manifest.read_text()

    assert cli.main([*argv, "-p", "fail", "True", "-o", "failed.ipynb"]) == 1
    out, err = capfd.readouterr()
    assert err.strip().splitlines() == [
        "transferlib run: tiny.md failed: RuntimeError: boom second line"
    ]
    assert not (tmp_path / "failed.ipynb").exists()
