import numpy as np
import pytest
import torch

from transferlib.models import build_model
from transferlib.training import augment_batch, fine_tune, train, train_from_scratch

FAST = {"progress": False, "device": "cpu"}


def test_small_cnn_overfits_tiny_separable_set(toy_split):
    train_data, test_data = toy_split
    result = train_from_scratch(
        "small_cnn", train_data, test_data, epochs=8, lr=0.05, batch_size=16, **FAST
    )
    history = result.history
    assert list(history.columns) == [
        "epoch",
        "train_loss",
        "train_accuracy",
        "test_loss",
        "test_accuracy",
        "lr",
        "seconds",
    ]
    assert history["epoch"].tolist() == list(range(1, 9))
    assert history["train_loss"].iloc[-1] < 0.25 * history["train_loss"].iloc[0]
    assert history["test_accuracy"].iloc[-1] == 1.0
    assert not result.model.training
    assert history["lr"].iloc[-1] < 0.01  # cosine schedule decays towards 0


def test_same_seed_same_result_different_seed_differs(toy_split):
    train_data, test_data = toy_split
    runs = [
        train_from_scratch(
            "small_cnn",
            train_data,
            test_data,
            epochs=2,
            lr=0.05,
            batch_size=16,
            seed=seed,
            augment=True,
            **FAST,
        )
        for seed in (5, 5, 6)
    ]
    a, b, c = (r.model.state_dict() for r in runs)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)
    assert not torch.equal(a["head.weight"], c["head.weight"])
    cols = ["train_loss", "test_accuracy"]
    assert runs[0].history[cols].equals(runs[1].history[cols])


def test_resnet20_trains_one_epoch_on_32px(make_task):
    data = make_task(24, 2, size=32)
    result = train_from_scratch(
        "resnet20", data, None, epochs=1, lr=0.1, batch_size=8, augment=True, **FAST
    )
    assert np.isnan(result.history["test_accuracy"].iloc[0])
    assert result.model.head.out_features == 2


def test_fine_tune_keeps_source_and_scales_backbone_lr(toy_split):
    train_data, test_data = toy_split
    torch.manual_seed(0)
    source = build_model("small_cnn", num_classes=5)
    before = {k: v.clone() for k, v in source.state_dict().items()}
    frozen = fine_tune(
        source,
        train_data,
        test_data,
        epochs=2,
        lr=0.05,
        backbone_lr_multiplier=1e-9,
        weight_decay=0.0,
        **FAST,
    )
    for name, value in source.state_dict().items():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)
    assert frozen.model.head.out_features == 3
    conv = "blocks.0.0.weight"
    torch.testing.assert_close(frozen.model.state_dict()[conv], before[conv], rtol=0, atol=1e-6)
    full = fine_tune(
        source, train_data, test_data, epochs=2, lr=0.05, backbone_lr_multiplier=1.0, **FAST
    )
    assert (full.model.state_dict()[conv] - before[conv]).abs().max() > 1e-3


def test_step_schedule_divides_by_ten(toy_split):
    train_data, _ = toy_split
    result = train_from_scratch(
        "small_cnn", train_data, None, epochs=4, lr=0.1, batch_size=32, schedule="step", **FAST
    )
    assert result.history["lr"].round(6).tolist() == [0.1, 0.1, 0.01, 0.001]


def test_bad_input_is_rejected(toy_split, make_task):
    train_data, _ = toy_split
    model = build_model("small_cnn", num_classes=3)
    one_class = make_task(10, 1)
    with pytest.raises(ValueError, match="one class"):
        train(model, one_class, None, 1, 0.1, 4, **FAST)
    with pytest.raises(ValueError, match="at least two classes"):
        train_from_scratch("small_cnn", one_class, None, 1, 0.1, 4, **FAST)
    with pytest.raises(ValueError, match="head has 2 outputs"):
        train(build_model("small_cnn", num_classes=2), train_data, None, 1, 0.1, 4, **FAST)
    with pytest.raises(ValueError, match="unknown schedule"):
        train(model, train_data, None, 1, 0.1, 4, schedule="linear", **FAST)
    with pytest.raises(ValueError, match="epochs"):
        train(model, train_data, None, 0, 0.1, 4, **FAST)
    with pytest.raises(ValueError, match="unknown model"):
        train_from_scratch("alexnet", train_data, None, 1, 0.1, 4, **FAST)

    class Mismatched:
        images = train_data.images
        labels = train_data.labels[:-1]

    with pytest.raises(ValueError, match="labels"):
        train(model, Mismatched(), None, 1, 0.1, 4, **FAST)

    class FloatImages:
        images = train_data.images.astype(np.float32)
        labels = train_data.labels

    with pytest.raises(TypeError, match="uint8"):
        train(model, FloatImages(), None, 1, 0.1, 4, **FAST)
    with pytest.raises(ValueError, match="not available|unknown device|does not exist"):
        train(model, train_data, None, 1, 0.1, 4, device="cuda:7", progress=False)


def test_augment_batch_crops_and_flips():
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).view(2, 3, 6, 6)
    generator = torch.Generator().manual_seed(0)
    torch.testing.assert_close(augment_batch(x, generator, pad=0, flip=False), x)
    flipped = augment_batch(x, generator, pad=0, flip=True)
    for i in range(2):
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(2))
    cropped = augment_batch(x, generator, pad=2, flip=False)
    assert cropped.shape == x.shape
    # every crop is a shifted window of the zero-padded image
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        windows = [padded[i, :, r : r + 6, c : c + 6] for r in range(5) for c in range(5)]
        assert any(torch.equal(cropped[i], w) for w in windows)


def test_warmup_raises_the_rate_linearly_before_the_schedule(toy_split):
    train_data, _ = toy_split  # 96 images, batch 32: 3 steps per epoch, 6 warm-up steps
    result = train_from_scratch(
        "small_cnn",
        train_data,
        None,
        epochs=4,
        lr=0.1,
        batch_size=32,
        schedule="constant",
        warmup_epochs=2,
        **FAST,
    )
    assert result.history["lr"].round(6).tolist() == [0.05, 0.1, 0.1, 0.1]
    cosine = train_from_scratch(
        "small_cnn",
        train_data,
        None,
        epochs=4,
        lr=0.1,
        batch_size=32,
        warmup_epochs=1,
        nesterov=True,
        **FAST,
    )
    lr = cosine.history["lr"].to_numpy()
    assert lr[0] == pytest.approx(0.1) and np.all(np.diff(lr) < 0) and lr[-1] < 0.01
    with pytest.raises(ValueError, match="warmup_epochs"):
        train_from_scratch(
            "small_cnn", train_data, None, epochs=2, lr=0.1, batch_size=32, warmup_epochs=2, **FAST
        )


def test_eval_every_skips_test_epochs_but_always_evaluates_the_last(toy_split):
    train_data, test_data = toy_split
    every_third = train_from_scratch(
        "small_cnn", train_data, test_data, epochs=4, lr=0.05, batch_size=16, eval_every=3, **FAST
    )
    assert every_third.history["test_accuracy"].notna().tolist() == [False, False, True, True]
    last_only = train_from_scratch(
        "small_cnn", train_data, test_data, epochs=4, lr=0.05, batch_size=16, eval_every=0, **FAST
    )
    assert last_only.history["test_accuracy"].notna().tolist() == [False, False, False, True]
    # skipping evaluation changes nothing else
    assert (
        last_only.history["test_accuracy"].iloc[-1] == every_third.history["test_accuracy"].iloc[-1]
    )


def test_tqdm_disable_silences_progress_bars_even_when_asked_for(toy_split, capsys, monkeypatch):
    train_data, _ = toy_split
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    train_from_scratch(
        "small_cnn", train_data, None, epochs=1, lr=0.05, batch_size=32, device="cpu", progress=True
    )
    assert "train" in capsys.readouterr().err  # a terminal run keeps its bar
    monkeypatch.setenv("TQDM_DISABLE", "1")  # what book builds set
    train_from_scratch(
        "small_cnn", train_data, None, epochs=1, lr=0.05, batch_size=32, device="cpu", progress=True
    )
    assert capsys.readouterr().err == ""
