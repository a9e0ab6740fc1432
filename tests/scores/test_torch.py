"""NumPy and torch inputs agree; NumPy input never imports torch; torch stays on torch."""

import subprocess
import sys

import numpy as np
import pytest

from transferlib.scores import SCORES, eep_predictions, hgr_maximal_correlation, leep, p2l


def test_numpy_path_does_not_import_torch():
    code = (
        "import sys, numpy as np\n"
        "import transferlib.scores as s, transferlib.evaluation as e\n"
        "y = np.arange(40) % 3\n"
        "x = np.random.default_rng(0).standard_normal((40, 5)) + y[:, None]\n"
        "p = np.full((40, 4), 0.25)\n"
        "for name, info in s.SCORES.items():\n"
        "    info.compute(features=x, source_probs=p, source_labels=y % 2, target_labels=y)\n"
        "s.eep_predictions(p, y); s.p2l.dataset_embedding(np.abs(x))\n"
        "s.hgr_maximal_correlation(y, y % 2, method='ace')\n"
        "e.pearson(x[:, 0], x[:, 1]); e.linear_fit_with_ci(x[:, 0], x[:, 1])\n"
        "e.ndcg(x[:, 0], np.abs(x[:, 1])); e.transferability_levels(x[:, 0], x[:, 1])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


torch = pytest.importorskip("torch")
torch.set_num_threads(1)

RNG = np.random.default_rng(0)
Y = np.arange(90) % 3
X_TALL = RNG.standard_normal((90, 6)) + Y[:, None] * 0.5
X_WIDE = RNG.standard_normal((90, 120)) + Y[:, None] * 0.1
LOGITS = RNG.standard_normal((90, 7))
PROBS = np.exp(LOGITS) / np.exp(LOGITS).sum(1, keepdims=True)
KWARGS = {"nleep": {"components_per_class": 1, "covariance_type": "diag"}}


def _compute(name, features, probs, source_labels, target_labels):
    return SCORES[name].compute(
        features=features,
        source_probs=probs,
        source_labels=source_labels,
        target_labels=target_labels,
        **KWARGS.get(name, {}),
    )


@pytest.mark.parametrize("name", sorted(SCORES))
@pytest.mark.parametrize("features", [X_TALL, X_WIDE], ids=["n>d", "n<d"])
def test_numpy_and_torch_agree(name, features):
    if name == "nleep" and features is X_WIDE:
        pytest.skip("N-LEEP converts torch input to NumPy; one shape suffices")
    as_numpy = _compute(name, features, PROBS, Y % 2, Y)
    as_torch = _compute(
        name,
        torch.as_tensor(features),
        torch.as_tensor(PROBS),
        torch.as_tensor(Y % 2),
        torch.as_tensor(Y),
    )
    assert type(as_torch) is float and type(as_numpy) is float
    assert as_torch == pytest.approx(as_numpy, rel=1e-8, abs=1e-10)


@pytest.mark.parametrize("name", ["h_score", "logme", "transrate", "gbc"])
def test_float32_tensor_agrees_with_float32_array(name):
    """Both backends compute float32 input in float64, so they agree to float64 rounding."""
    features = X_TALL.astype(np.float32)
    as_torch = _compute(name, torch.as_tensor(features), None, None, Y)
    assert as_torch == pytest.approx(_compute(name, features, None, None, Y), rel=1e-9)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_softmax_is_accepted(dtype):
    """Half-precision softmax rows miss 1 by up to eps/2; they are accepted and computed
    in float64 on the normalised rows."""
    logits = torch.as_tensor(np.random.default_rng(1).standard_normal((90, 50)) * 3)
    probs = torch.softmax(logits, dim=1).to(getattr(torch, dtype))
    exact = probs.double() / probs.double().sum(1, keepdim=True)
    assert leep(probs, Y) == pytest.approx(leep(exact.numpy(), Y), rel=1e-12)


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
