"""train_encoder_decoder: it learns labels and maps, freezes the encoder, caches its result."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferlib.models import EncoderDecoder
from transferlib.training.encoder_decoder import (
    train_encoder_decoder,
    train_encoder_decoder_cached,
)


def _data(n: int = 160, seed: int = 0):
    """Images with a bright square in one of four quadrants: its index, and its mask."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    images = rng.integers(0, 40, (n, 3, 16, 16)).astype(np.uint8)
    maps = np.zeros((n, 8, 8), dtype=np.float32)
    for i, k in enumerate(labels):
        r, c = divmod(int(k), 2)
        images[i, :, 8 * r : 8 * r + 8, 8 * c : 8 * c + 8] += 200
        maps[i, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4] = 1.0
    return images, labels, maps


def _model(dense: bool, seed: int = 0) -> EncoderDecoder:
    torch.manual_seed(seed)
    return EncoderDecoder(
        1 if dense else 4,
        dense=dense,
        width=4,
        code_channels=2,
        image_size=16,
        downsamples=2,
        upsamples=1,
    )


def test_learns_class_labels_and_dense_maps():
    images, labels, maps = _data()
    maps = (maps - maps.mean()) / maps.std()  # standardised, as the chapter trains dense maps
    classes = train_encoder_decoder(
        _model(False),
        images,
        labels,
        images[:40],
        labels[:40],
        epochs=8,
        lr=0.1,
        batch_size=32,
        device="cpu",
        progress=False,
    )
    assert classes.history["test_accuracy"].iloc[-1] > 0.9
    dense = train_encoder_decoder(
        _model(True),
        images,
        maps,
        images[:40],
        maps[:40],
        epochs=8,
        lr=0.1,
        batch_size=32,
        device="cpu",
        progress=False,
    )
    baseline = float(((maps[:40] - maps.mean(0)) ** 2).mean())
    assert dense.history["test_loss"].iloc[-1] < 0.5 * baseline
    assert dense.history["test_accuracy"].isna().all()


def test_frozen_encoder_stays_frozen_and_test_every_skips_epochs():
    images, labels, _ = _data()
    model = _model(False)
    before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("head")}
    head = model.head.weight.detach().clone()
    result = train_encoder_decoder(
        model,
        images,
        labels,
        images[:40],
        labels[:40],
        epochs=3,
        lr=0.1,
        batch_size=32,
        freeze_encoder=True,
        test_every=2,
        device="cpu",
        progress=False,
    )
    for name, value in before.items():
        torch.testing.assert_close(model.state_dict()[name], value)
    assert not torch.equal(model.head.weight.detach(), head)
    assert result.history["test_loss"].isna().tolist() == [True, False, False]


def test_cached_training_loads_the_same_weights_and_starts_from_another_encoder(tmp_path):
    images, labels, maps = _data()
    kwargs = {
        "epochs": 2,
        "lr": 0.1,
        "batch_size": 32,
        "device": "cpu",
        "progress": False,
        "cache_dir": tmp_path,
    }
    arch = {"width": 4, "code_channels": 2, "image_size": 16, "downsamples": 2, "upsamples": 1}
    first = train_encoder_decoder_cached(
        images, labels, model_kwargs={"num_classes": 4, **arch}, **kwargs
    )
    again = train_encoder_decoder_cached(
        images, labels, model_kwargs={"num_classes": 4, **arch}, **kwargs
    )
    assert not first.from_cache and again.from_cache and first.key == again.key
    for name, value in first.model.state_dict().items():
        torch.testing.assert_close(again.model.state_dict()[name], value)
    readout = train_encoder_decoder_cached(
        images,
        maps,
        model_kwargs={"num_classes": 1, "dense": True, "width": 2},
        init=(first.key, first.model),
        freeze_encoder=True,
        **kwargs,
    )
    assert readout.model.dense and readout.key != first.key
    torch.testing.assert_close(readout.model.code.weight, first.model.code.weight)


@pytest.mark.parametrize(
    "targets, message",
    [
        (np.zeros((160, 4, 4), dtype=np.float32), "maps for this decoder"),
        (np.zeros((160, 8, 8), dtype=np.int64), "float maps"),
        (np.zeros((150, 8, 8), dtype=np.float32), "entries"),
    ],
)
def test_bad_dense_targets_are_refused(targets, message):
    images, _, _ = _data()
    with pytest.raises((ValueError, TypeError), match=message):
        train_encoder_decoder(
            _model(True),
            images,
            targets,
            epochs=1,
            lr=0.1,
            batch_size=32,
            device="cpu",
            progress=False,
        )


def test_bad_class_labels_and_options_are_refused():
    images, labels, _ = _data()
    with pytest.raises(ValueError, match="lie in"):
        train_encoder_decoder(_model(False), images, labels + 4, epochs=1, lr=0.1, batch_size=32)
    with pytest.raises(ValueError, match="epochs"):
        train_encoder_decoder(_model(False), images, labels, epochs=0, lr=0.1, batch_size=32)
    with pytest.raises(ValueError, match="both test_images"):
        train_encoder_decoder(
            _model(False), images, labels, images, epochs=1, lr=0.1, batch_size=32
        )
    with pytest.raises(ValueError, match="init"):
        train_encoder_decoder_cached(
            images,
            labels,
            model_kwargs={"num_classes": 4},
            epochs=1,
            lr=0.1,
            batch_size=32,
            freeze_encoder=True,
        )
