"""Every score on CUDA tensors agrees with its NumPy path (skipped without a GPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferlib.scores import SCORES, h_scores

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def _inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng([0, 17])
    n, d, n_source, n_target = 600, 24, 30, 5
    target = rng.integers(0, n_target, n)
    centres = rng.normal(size=(n_target, d))
    features = centres[target] + rng.normal(size=(n, d))
    logits = rng.normal(size=(n, n_source)) + 2.0 * np.eye(n_source)[target * 3]
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    source = np.where(rng.random(n) < 0.7, target, rng.integers(0, n_target, n))
    return {"features": features, "source_probs": probs, "source_labels": source, "target": target}


@pytest.mark.parametrize("name", sorted(SCORES))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_score_on_cuda_matches_numpy(name: str, dtype: torch.dtype) -> None:
    data = _inputs()
    info = SCORES[name]
    expected = info.compute(
        features=data["features"],
        source_probs=data["source_probs"],
        source_labels=data["source_labels"],
        target_labels=data["target"],
    )

    def cuda(array: np.ndarray, floating: bool) -> torch.Tensor:
        return torch.as_tensor(array, dtype=dtype if floating else None, device="cuda")

    # float32 probabilities are renormalised so the float32 rows sum to one at float32 precision.
    probs = cuda(data["source_probs"], True)
    got = info.compute(
        features=cuda(data["features"], True),
        source_probs=probs / probs.sum(1, keepdim=True),
        source_labels=cuda(data["source_labels"], False),
        target_labels=cuda(data["target"], False),
    )
    assert isinstance(got, float)
    assert np.isfinite(got)
    # float64 input: the same float64 arithmetic on another device; float32 input: rounding of
    # the input only (every score computes in float64).
    rel = 1e-7 if dtype == torch.float64 else 1e-3
    assert got == pytest.approx(expected, rel=rel, abs=rel)


def test_batched_h_scores_on_cuda_match_numpy() -> None:
    data = _inputs()
    rng = np.random.default_rng([0, 18])
    label_sets = np.stack([data["target"], rng.permutation(data["target"]) % 3], axis=1)
    expected = h_scores(data["features"], label_sets)
    got = h_scores(
        torch.as_tensor(data["features"], device="cuda"),
        torch.as_tensor(label_sets, device="cuda"),
    )
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-7)
