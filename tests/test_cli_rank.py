"""``transferlib rank`` end to end on a small ImageFolder of Glyphs images: packaged,
checkpoint and factory models, the cache, the CSV/PNG report, and clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from transferlib import cli
from transferlib.data import load_glyphs
from transferlib.rank import rank_models
from transferlib.scores import logme

torch.set_num_threads(1)

FACTORIES = """\
import torch
from torch import nn


def classifier():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)
    )


def backbone():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def not_a_module():
    return 3
"""


def _write_folder(root, images, labels, names=("lower", "upper")):
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / names[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(image).transpose(1, 2, 0)).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def glyphs():
    data = load_glyphs(n_images=40, image_size=32, use_cache=False)
    return data.images, data.labels["uppercase"].to_numpy().astype(int)


@pytest.fixture
def setup(tmp_path, glyphs, monkeypatch):
    images, labels = glyphs
    folder = _write_folder(tmp_path / "target", images, labels)
    (tmp_path / "rank_factories.py").write_text(FACTORIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    torch.manual_seed(1)
    checkpoint = tmp_path / "resnet.pt"
    import torchvision

    torch.save(torchvision.models.resnet18(num_classes=5).state_dict(), checkpoint)
    return folder, checkpoint, tmp_path / "cache"


def test_command_ranks_writes_the_report_and_reuses_the_cache(setup, tmp_path, capsys):
    folder, checkpoint, cache = setup
    argv = [
        "rank", str(folder), "-m", "efficientnet_lite0", "-m", f"resnet18={checkpoint}",
        "-s", "leep", "-s", "logme", "-s", "nce",
        "--image-size", "32", "--cache-dir", str(cache), "--out", str(tmp_path / "out"),
        "--no-progress",
    ]  # fmt: skip
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "efficientnet_lite0" in printed and "ranking.png" in printed
    table = pd.read_csv(tmp_path / "out" / "ranking.csv", index_col="model")
    assert list(table.columns) == ["rank", "leep", "logme", "nce", "seconds"]
    assert len(table) == 2 and sorted(table["rank"]) == [1, 2]
    assert table["leep"].is_monotonic_decreasing  # ordered by the first score
    assert (table["seconds"] > 0).all()
    assert (tmp_path / "out" / "ranking.png").stat().st_size > 1000
    assert cli.main(argv) == 0  # second run: every model's outputs come from the cache
    again = pd.read_csv(tmp_path / "out" / "ranking.csv", index_col="model")
    assert (again["seconds"] == 0).all()
    pd.testing.assert_frame_equal(again.drop(columns="seconds"), table.drop(columns="seconds"))


def test_scores_are_those_of_the_penultimate_features(setup, glyphs):
    """The factory classifier's features are the input of its last Linear layer."""
    folder, _, cache = setup
    table = rank_models(
        folder, ["rank_factories:classifier"], scores=["logme"], image_size=32,
        cache_dir=cache, progress=False,
    )  # fmt: skip
    import rank_factories

    model = rank_factories.classifier().eval()
    paths = sorted(folder.rglob("*.png"))  # class folders sort as the labels do
    pixels = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        features = model[:-1]((x - mean) / std).numpy()
    labels = np.array([p.parent.name == "upper" for p in paths], dtype=int)
    assert table.loc["rank_factories:classifier", "logme"] == pytest.approx(
        logme(features, labels), rel=1e-5
    )


def test_bad_targets_are_clear_errors(tmp_path, glyphs):
    images = glyphs[0]
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images"):
        rank_models(tmp_path / "empty", ["efficientnet_lite0"], progress=False)
    one = _write_folder(tmp_path / "one", images[:3], [0, 0, 0])
    with pytest.raises(ValueError, match="at least two classes"):
        rank_models(one, ["efficientnet_lite0"], progress=False)
    broken = _write_folder(tmp_path / "broken", images[:4], [0, 0, 1, 1])
    (broken / "upper" / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="unreadable image.*bad.png"):
        rank_models(broken, ["efficientnet_lite0"], progress=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        rank_models(tmp_path / "missing", ["efficientnet_lite0"], progress=False)


def test_bad_models_are_clear_errors(setup, tmp_path, capsys):
    folder, checkpoint, cache = setup
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00" * 64)
    cases = [
        (f"resnet18={garbage}", "could not be loaded"),
        (f"resnet34={checkpoint}", "does not fit resnet34"),
        (str(checkpoint), "does not name its architecture"),
        (f"nonsense={checkpoint}", "not a torchvision architecture"),
        ("rank_factories:missing", "could not be imported"),
        ("rank_factories:not_a_module", "not a Module"),
        ("resnet9000", "unknown model"),
    ]
    for spec, message in cases:
        with pytest.raises((ValueError, TypeError), match=message):
            rank_models(folder, [spec], image_size=32, cache_dir=cache, progress=False)
    with pytest.raises(ValueError, match="not a class distribution"):
        rank_models(
            folder, ["rank_factories:backbone"], scores=["leep"], image_size=32,
            cache_dir=cache, progress=False,
        )  # fmt: skip
    with pytest.raises(ValueError, match="scores must be one of"):
        rank_models(folder, ["efficientnet_lite0"], scores=["bogus"], progress=False)
    # the command reports one line and exits with status 2
    status = cli.main(["rank", str(folder), "-m", "resnet9000", "--cache-dir", str(cache)])
    assert status == 2
    assert "unknown model" in capsys.readouterr().err


def test_backbone_without_classifier_ranks_with_feature_scores(setup):
    folder, _, cache = setup
    table = rank_models(
        folder, ["rank_factories:backbone", "rank_factories:classifier"],
        scores=["logme", "parc"], image_size=32, cache_dir=cache, progress=False,
    )  # fmt: skip
    assert np.isfinite(table[["logme", "parc"]].to_numpy()).all()


def test_readme_documents_the_command(repo_root):
    readme = (repo_root / "README.md").read_text()
    assert "transferlib rank" in readme
    assert "--model efficientnet_lite0" in readme
