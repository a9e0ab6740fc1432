"""compute_scores on a GPU gives the NumPy values (skipped without one)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferlib.experiments.scoring import compute_scores
from transferlib.scores import SCORES

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_scores_computed_on_the_gpu_match_numpy() -> None:
    rng = np.random.default_rng([0, 20])
    target = rng.integers(0, 4, 300)
    features = rng.normal(size=(300, 12)) + target[:, None]
    probs = rng.dirichlet(np.ones(8), 300)
    inputs = {"source_labels": probs.argmax(1), "source_probs": probs, "features": features}
    names = sorted(SCORES)
    expected = compute_scores(names, target, **inputs)
    for device in ("cuda", "auto"):
        got = compute_scores(names, target, device=device, **inputs)
        for name in names:
            assert got[name] == pytest.approx(expected[name], rel=1e-7, abs=1e-9), name
