import numpy as np
import pytest
import torch

from transferlib.models import build_model, preprocess
from transferlib.training import extract

# the package exports a function of the same name, so fetch the module itself


@pytest.fixture
def model_and_images(make_task):
    torch.manual_seed(0)
    model = build_model("resnet20", num_classes=4).eval()
    return model, make_task(10, 4, size=32).images


def test_outputs_match_the_model(model_and_images):
    model, images = model_and_images
    out = extract(
        model, images, ("logits", "probs", "features", "layer2"), batch_size=3, device="cpu"
    )
    with torch.no_grad():
        x = preprocess(model, torch.from_numpy(images))
        logits = model(x)
        torch.testing.assert_close(torch.from_numpy(out["logits"]), logits, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(
            torch.from_numpy(out["features"]), model.features(x), rtol=1e-4, atol=1e-5
        )
        torch.testing.assert_close(
            torch.from_numpy(out["layer2"]), model.intermediate(x, "layer2"), rtol=1e-4, atol=1e-5
        )
    np.testing.assert_allclose(out["probs"].sum(1), 1.0, rtol=1e-5)
    assert out["features"].shape == (10, 64) and out["layer2"].shape == (10, 32)


def test_batch_size_does_not_change_results(model_and_images):
    model, images = model_and_images
    small = extract(model, images, ("features",), batch_size=2, device="cpu")["features"]
    large = extract(model, images, ("features",), batch_size=64, device="cpu")["features"]
    np.testing.assert_allclose(small, large, rtol=1e-4, atol=1e-5)


def test_tensor_output_and_training_mode_restored(model_and_images):
    model, images = model_and_images
    model.train()
    out = extract(model, images, "probs", device="cpu", as_numpy=False)
    assert isinstance(out["probs"], torch.Tensor)
    assert model.training


def test_bad_requests(model_and_images):
    model, images = model_and_images
    with pytest.raises(ValueError, match="unknown output"):
        extract(model, images, ("embedding",), device="cpu")
    with pytest.raises(TypeError, match="uint8"):
        extract(model, images.astype(np.float32), device="cpu")
    with pytest.raises(ValueError, match="shape"):
        extract(model, images[0], device="cpu")
    with pytest.raises(ValueError, match="empty"):
        extract(model, images[:0], device="cpu")
