"""Training, fine-tuning, extraction and batched heads on a CUDA GPU (skipped without one)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferlib.models import build_model
from transferlib.training import extract, fine_tune, train_from_scratch
from transferlib.training.heads import retrain_heads

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.mark.parametrize("amp", [True, False])
def test_training_on_cuda_learns_a_separable_task(toy_split, amp: bool) -> None:
    train_data, test_data = toy_split
    result = train_from_scratch(
        "small_cnn",
        train_data,
        test_data,
        epochs=8,
        lr=0.05,
        batch_size=16,
        device="cuda",
        amp=amp,
        channels_last=True,
        progress=False,
    )
    assert next(result.model.parameters()).device.type == "cuda"
    history = result.history
    assert np.isfinite(history["train_loss"]).all()
    assert history["train_loss"].iloc[-1] < 0.5 * history["train_loss"].iloc[0]
    assert history["test_accuracy"].iloc[-1] >= 0.9


def test_fine_tuning_on_cuda_with_amp(toy_split) -> None:
    train_data, test_data = toy_split
    source = train_from_scratch(
        "small_cnn",
        train_data,
        test_data,
        epochs=3,
        lr=0.05,
        batch_size=16,
        progress=False,
        device="cuda",
    ).model
    result = fine_tune(
        source, train_data, test_data, epochs=3, device="cuda", amp=True, progress=False
    )
    assert np.isfinite(result.history["train_loss"]).all()
    assert result.history["test_accuracy"].iloc[-1] > 1 / 3 + 0.2


def test_extraction_on_cuda_matches_cpu(toy_split) -> None:
    train_data, _ = toy_split
    torch.manual_seed(0)
    model = build_model("small_cnn", num_classes=3, width=8).eval()
    cpu = extract(model, train_data.images, ("probs", "features"), device="cpu", amp=False)
    gpu = extract(model, train_data.images, ("probs", "features"), device="cuda", amp=False)
    for name in ("probs", "features"):
        np.testing.assert_allclose(gpu[name], cpu[name], rtol=1e-4, atol=1e-5)
    half = extract(model, train_data.images, ("probs",), device="cuda", amp=True)
    np.testing.assert_allclose(half["probs"].sum(1), 1.0, atol=1e-3)
    np.testing.assert_allclose(half["probs"], cpu["probs"], atol=2e-2)


def test_batched_heads_on_cuda_match_cpu() -> None:
    rng = np.random.default_rng([0, 19])
    n, m, d, tasks = 400, 200, 16, 6
    centres = rng.normal(size=(10, d))
    labels = rng.integers(0, 10, n + m)
    features = (centres[labels] + rng.normal(size=(n + m, d))).astype(np.float32)
    label_sets = np.stack(
        [np.where(labels % (t + 2) < 2, labels % (t + 2), -1) for t in range(tasks)]
    )
    args = (features[:n], label_sets[:, :n], features[n:], label_sets[:, n:])
    cpu = retrain_heads(*args, device="cpu")
    gpu = retrain_heads(*args, device="cuda")
    for column in ("accuracy", "test_log_likelihood", "train_log_likelihood"):
        np.testing.assert_allclose(gpu[column], cpu[column], rtol=1e-3, atol=1e-3)
    assert (gpu["accuracy"] > 0.6).all()


def test_cuda_resolves_to_the_device_tensors_report() -> None:
    from transferlib.training import resolve_device

    on_gpu = torch.zeros(1, device="cuda").device
    assert resolve_device("cuda") == on_gpu
    assert resolve_device("auto") == on_gpu


def test_stacked_fine_tuning_of_a_gpu_source_with_cpu_heads_matches_cpu() -> None:
    """The LEEP chapter's full scale: a source already on the GPU, whole network (cut None), new
    heads made on the CPU. The stack check used to run a CPU sample through GPU weights."""
    from transferlib.models import preprocess
    from transferlib.training.stacked import StackedTask, train_stacked

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 120)
    images = torch.from_numpy(rng.integers(0, 255, (120, 3, 16, 16), dtype=np.uint8))
    task = StackedTask(np.arange(80), labels[:80], np.arange(80, 120), labels[80:], 3, 0)
    torch.manual_seed(0)
    source = build_model("small_cnn", 5, width=4)
    histories = {}
    for device in ("cpu", "cuda"):
        torch.manual_seed(1)
        head = torch.nn.Linear(source.feature_dim, 3)  # on the CPU in both runs
        model = source.to(device)
        with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):  # float32 on both
            histories[device] = train_stacked(
                [model],
                images,
                [task],
                heads=[head],
                cut=None,
                epochs=2,
                lr=0.05,
                batch_size=10,
                transform=lambda batch, m=model: preprocess(m, batch),
                device=device,
            )[0]
    assert next(source.parameters()).device.type == "cuda"  # the source itself was not moved back
    np.testing.assert_allclose(
        histories["cuda"]["train_loss"], histories["cpu"]["train_loss"], rtol=1e-3, atol=1e-3
    )
