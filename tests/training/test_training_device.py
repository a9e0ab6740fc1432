import pytest
import torch

from transferlib.training import resolve_device, seed_everything


def test_auto_and_cpu():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else None
    if expected:
        assert resolve_device("auto").type == "cuda"
    elif not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        assert resolve_device("auto") == torch.device("cpu")


def test_missing_or_unknown_devices_raise():
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
    else:
        with pytest.raises(ValueError, match="does not exist"):
            resolve_device("cuda:99")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("gpu0")
    with pytest.raises(TypeError):
        resolve_device(0)


def test_seed_everything_repeats_random_streams():
    seed_everything(3)
    first = torch.rand(4)
    seed_everything(3)
    torch.testing.assert_close(torch.rand(4), first)
