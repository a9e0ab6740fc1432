"""NumPy and torch inputs agree; NumPy input never imports torch."""

import subprocess
import sys

import numpy as np
import pytest

from transferlib.scores import SCORES, eep_predictions, hgr_maximal_correlation, p2l


def test_numpy_path_does_not_import_torch():
    code = (
        "import sys, numpy as np\n"
        "import transferlib.scores as s, transferlib.evaluation as e\n"
        "y = np.arange(40) % 3\n"
        "x = np.random.default_rng(0).standard_normal((40, 5)) + y[:, None]\n"
        "p = np.full((40, 4), 0.25)\n"
        "for name, info in s.SCORES.items():\n"
        "    info.compute(y, features=x, source_probs=p, source_labels=y % 2)\n"
        "s.eep_predictions(p, y); s.p2l.dataset_embedding(np.abs(x))\n"
        "e.pearson(x[:, 0], x[:, 1])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
Y = np.arange(90) % 3
X_TALL = RNG.standard_normal((90, 6)) + Y[:, None] * 0.5
X_WIDE = RNG.standard_normal((90, 120)) + Y[:, None] * 0.1
LOGITS = RNG.standard_normal((90, 7))
PROBS = np.exp(LOGITS) / np.exp(LOGITS).sum(1, keepdims=True)
KWARGS = {"nleep": {"components_per_class": 1, "covariance_type": "diag"}}


@pytest.mark.parametrize("name", sorted(SCORES))
@pytest.mark.parametrize("features", [X_TALL, X_WIDE], ids=["n>d", "n<d"])
def test_numpy_and_torch_agree(name, features):
    info = SCORES[name]
    if name == "nleep" and features is X_WIDE:
        pytest.skip("N-LEEP converts torch input to NumPy; one shape suffices")
    kwargs = KWARGS.get(name, {})
    as_numpy = info.compute(Y, features=features, source_probs=PROBS, source_labels=Y % 2, **kwargs)
    as_torch = info.compute(
        torch.as_tensor(Y),
        features=torch.as_tensor(features),
        source_probs=torch.as_tensor(PROBS),
        source_labels=torch.as_tensor(Y % 2),
        **kwargs,
    )
    assert type(as_torch) is float and type(as_numpy) is float
    assert as_torch == pytest.approx(as_numpy, rel=1e-8, abs=1e-10)


def test_float32_tensor_is_computed_in_float64():
    value = SCORES["h_score"].compute(Y, features=torch.as_tensor(X_TALL, dtype=torch.float32))
    expected = SCORES["h_score"].compute(Y, features=X_TALL.astype(np.float32))
    assert value == pytest.approx(expected, rel=1e-8)


def test_eep_predictions_stay_on_torch():
    out = eep_predictions(torch.as_tensor(PROBS), torch.as_tensor(Y))
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), eep_predictions(PROBS, Y), atol=1e-12)


def test_p2l_and_hgr_accept_tensors():
    features = np.abs(X_TALL)
    np.testing.assert_allclose(
        p2l.dataset_embedding(torch.as_tensor(features)), p2l.dataset_embedding(features)
    )
    np.testing.assert_allclose(
        hgr_maximal_correlation(torch.as_tensor(Y), torch.as_tensor(Y % 2), 1),
        hgr_maximal_correlation(Y, Y % 2, 1),
    )
