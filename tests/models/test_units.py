"""Named units of every network: reading activations at a cut point and resuming from them."""

from __future__ import annotations

import pytest
import torch

from transferlib.models import build_model, preprocess

NAMES = ["small_cnn", "resnet20", "resnet18"]


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.mark.parametrize("name", NAMES)
def test_forward_from_any_cut_point_equals_forward(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=5).eval()
    x = preprocess(model, torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8))
    assert set(model.layers) <= set(model.cut_points)
    with torch.no_grad():
        expected = model(x)
        for cut in model.cut_points:
            torch.testing.assert_close(model.forward_from(cut, model.activation(x, cut)), expected)
        torch.testing.assert_close(model.forward_from(None, x), expected)


def test_efficientnet_lite_units_include_the_blocks_of_each_stage():
    model = build_model("efficientnet_lite0", input_size=32).eval()
    assert model.cut_points[0] == "stem" and model.cut_points[-1] == "head"
    assert "stage6.0" in model.cut_points and "stage6" in model.cut_points
    x = preprocess(model, torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8))
    with torch.no_grad():
        torch.testing.assert_close(
            model.forward_from("stage7", model.activation(x, "stage7")), model(x)
        )


def test_top_parameters_are_the_units_after_the_cut_and_the_head():
    model = build_model("resnet20", num_classes=3)
    top = {id(p) for p in model.top_parameters("layer3.1")}
    last_block = {id(p) for p in model.stages[2][2].parameters()}
    head = {id(p) for p in model.head.parameters()}
    assert top == last_block | head
    assert len(model.top_parameters(None)) == len(list(model.parameters()))


def test_unknown_cut_point_is_rejected():
    model = build_model("small_cnn", num_classes=2)
    with pytest.raises(ValueError, match="unknown layer 'block9'"):
        model.activation(torch.zeros(1, 3, 8, 8), "block9")
    with pytest.raises(ValueError, match="unknown layer"):
        model.forward_from("block9", torch.zeros(1, 3, 8, 8))
