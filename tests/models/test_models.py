"""Tests for transferlib.models: interface, shapes, bad input, pretrained weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferlib.models import (
    IMAGENET_CLASSES,
    IMAGENET_TOP1,
    MODELS,
    build_model,
    efficientnet_lite,
    preprocess,
)

SMALL = ["small_cnn", "resnet20", "resnet18"]


@pytest.mark.parametrize("name", SMALL)
def test_interface_shapes_and_forward_split(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=7).eval()
    x = preprocess(model, torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8))
    with torch.no_grad():
        feats = model.features(x)
        logits = model(x)
        assert feats.shape == (4, model.feature_dim)
        assert logits.shape == (4, 7)
        torch.testing.assert_close(logits, model.head(feats))
        pooled = model.pooled(x, model.layers)
    assert list(pooled) == list(model.layers)
    torch.testing.assert_close(pooled[model.layers[-1]], feats)
    for layer, value in pooled.items():
        torch.testing.assert_close(model.intermediate(x, layer), value)


def test_resnet20_has_20_weighted_layers():
    model = build_model("resnet20", num_classes=10)
    weighted = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(weighted) == 20
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(0.27e6, rel=0.02)


def test_resnet18_small_input_keeps_resolution():
    small = build_model("resnet18", num_classes=3, small_input=True).eval()
    large = build_model("resnet18", num_classes=3, small_input=False).eval()
    x = torch.zeros(1, 3, 32, 32)
    with torch.no_grad():
        assert dict(small._feature_maps(x))["stem"].shape[-1] == 32
        assert dict(large._feature_maps(x))["stem"].shape[-1] == 8


def test_bad_names_and_arguments():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("vgg16", num_classes=3)
    with pytest.raises(ValueError, match="needs num_classes"):
        build_model("resnet20")
    with pytest.raises(ValueError, match="positive integer"):
        build_model("resnet20", num_classes=0)
    with pytest.raises(ValueError, match="unknown layer"):
        build_model("small_cnn", num_classes=2).intermediate(torch.zeros(1, 3, 8, 8), "layer9")
    with pytest.raises(ValueError, match="6n \\+ 2"):
        build_model("resnet20", num_classes=2, depth=21)
    with pytest.raises(ValueError, match="variant"):
        efficientnet_lite(3, pretrained=False)


def test_preprocess_scales_resizes_and_checks_input():
    model = build_model("small_cnn", num_classes=2)
    model.input_size = 16
    grey = torch.full((2, 1, 8, 8), 255, dtype=torch.uint8)
    out = preprocess(model, grey)
    assert out.shape == (2, 3, 16, 16)
    expected = (1.0 - torch.tensor(model.mean)) / torch.tensor(model.std)
    torch.testing.assert_close(out[0, :, 5, 5], expected)
    with pytest.raises(TypeError, match="uint8"):
        preprocess(model, torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="shape"):
        preprocess(model, np.zeros((3, 8, 8), dtype=np.uint8))


def test_imagenet_metadata():
    assert len(IMAGENET_CLASSES) == 1000
    assert IMAGENET_CLASSES[285] == "Egyptian cat"
    assert IMAGENET_CLASSES[967] == "espresso"
    assert set(IMAGENET_TOP1) == {0, 1, 2}
    assert sorted(MODELS) == sorted(
        SMALL
        + ["encoder_decoder", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
    )


@pytest.fixture(scope="module")
def lite0():
    torch.manual_seed(0)
    return efficientnet_lite(0).eval()


def test_efficientnet_lite_matches_package_forward(lite0):
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(lite0(x), lite0.head(lite0.net(x)), rtol=1e-4, atol=1e-4)
    assert lite0.feature_dim == 1280 and lite0.input_size == 224
    assert lite0.imagenet_top1 == IMAGENET_TOP1[0]


def test_efficientnet_lite_layers(lite0):
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        pooled = lite0.pooled(x, lite0.layers)
    widths = [value.shape[1] for value in pooled.values()]
    assert widths == [32, 16, 24, 40, 80, 112, 192, 320, 1280]
    torch.testing.assert_close(pooled["head"], lite0.features(x))


def test_efficientnet_lite_loads_silently(capsys):
    efficientnet_lite(0)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(("photo", "label"), [("chelsea", "Egyptian cat"), ("coffee", "espresso")])
def test_pretrained_lite0_recognises_real_photos(lite0, photo, label):
    skimage_data = pytest.importorskip("skimage.data")
    image = torch.from_numpy(getattr(skimage_data, photo)()).permute(2, 0, 1)[None].contiguous()
    with torch.no_grad():
        probs = lite0(preprocess(lite0, image)).softmax(dim=1)[0]
    assert IMAGENET_CLASSES[int(probs.argmax())] == label
    assert probs.max() > 0.5


def test_efficientnet_new_head_keeps_backbone():
    torch.manual_seed(0)
    model = efficientnet_lite(0, num_classes=5, input_size=96).eval()
    x = preprocess(model, torch.randint(0, 256, (2, 3, 40, 40), dtype=torch.uint8))
    assert x.shape[-1] == 96
    with torch.no_grad():
        assert model(x).shape == (2, 5)
    reference = efficientnet_lite(0)
    torch.testing.assert_close(model.net._conv_stem.weight, reference.net._conv_stem.weight)
