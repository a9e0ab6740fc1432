"""EncoderDecoder: shapes of the code, head and decoder; the TransferModel interface."""

from __future__ import annotations

import pytest
import torch

from transferlib.models import EncoderDecoder, build_model


def test_classification_model_reads_the_flattened_code():
    model = build_model(
        "encoder_decoder", num_classes=5, width=8, code_channels=4, image_size=32, downsamples=2
    ).eval()
    x = torch.randn(3, 3, 32, 32)
    assert model.feature_dim == 4 * 8 * 8 and not model.dense
    code = model.encode(x)
    assert code.shape == (3, 4, 8, 8)
    torch.testing.assert_close(model.features(x), code.flatten(1))
    torch.testing.assert_close(model(x), model.head(code.flatten(1)))
    pooled = model.pooled(x, ["block1", "code"])
    assert pooled["block1"].shape == (3, 8) and pooled["code"].shape == (3, 256)


@pytest.mark.parametrize("downsamples, upsamples, side", [(3, 2, 16), (2, 1, 16), (2, 2, 32)])
def test_dense_model_predicts_maps_of_the_output_size(downsamples, upsamples, side):
    model = EncoderDecoder(
        2,
        dense=True,
        width=8,
        code_channels=2,
        image_size=32,
        downsamples=downsamples,
        upsamples=upsamples,
    )
    assert model.dense and model.output_size == side
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 2, side, side)


def test_readouts_can_be_replaced_without_touching_the_encoder():
    model = EncoderDecoder(3, width=8, code_channels=2).eval()  # batch-norm statistics fixed
    encoder = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("head")}
    model.replace_decoder(1, width=4)
    assert model.dense and model(torch.randn(2, 3, 32, 32)).shape == (2, 1, 16, 16)
    model.replace_head(7)
    assert not model.dense and model(torch.randn(2, 3, 32, 32)).shape == (2, 7)
    for name, value in encoder.items():
        torch.testing.assert_close(model.state_dict()[name], value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"width": 0}, "width"),
        ({"image_size": 30}, "image_size"),
        ({"downsamples": 4}, "downsamples"),
        ({"upsamples": -1}, "upsamples"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EncoderDecoder(2, **kwargs)
