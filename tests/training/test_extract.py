import numpy as np
import pytest
import torch

from transferlib.models import build_model, preprocess
from transferlib.training import activation_maps, extract, inference_batch_size

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
    with pytest.raises(ValueError, match="batch_size"):
        extract(model, images, batch_size=0, device="cpu")
    with pytest.raises(ValueError, match="batch_size"):
        activation_maps(model, images, "layer2", batch_size=True, device="cpu")


def test_activation_maps_match_the_model_and_restore_its_mode(model_and_images):
    model, images = model_and_images
    model.train()
    maps = activation_maps(model, images, "layer2", batch_size=3, device="cpu")
    assert model.training
    assert maps.dtype == np.float32 and maps.flags.c_contiguous and maps.shape[:2] == (10, 32)
    with torch.no_grad():
        expected = model.eval().activation(preprocess(model, torch.from_numpy(images)), "layer2")
    torch.testing.assert_close(torch.from_numpy(maps), expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="layer"):
        activation_maps(model, images, "no-such-layer", device="cpu")


def test_default_batches_are_small_on_a_cpu_and_large_on_an_accelerator():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert inference_batch_size(gpu, 224) == 256
    assert inference_batch_size(cpu, None) == inference_batch_size(cpu, 64) == 32
    assert inference_batch_size(cpu, 224) == 16
