"""The simplified CNAPs: identity adaptation at initialisation, meta-training that learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferlib.models import build_model
from transferlib.models.film import SimplifiedCNAPs, meta_train


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def _source():
    torch.manual_seed(0)
    return build_model("small_cnn", 3, width=4).eval()


def test_zero_initialised_film_leaves_the_source_features_unchanged():
    source = _source()
    cnaps = SimplifiedCNAPs(source, "block2").eval()
    maps = torch.randn(6, 8, 4, 4)
    with torch.no_grad():
        cnaps.adapt(maps)
        torch.testing.assert_close(cnaps.features(maps), source.features_from("block2", maps))


def test_prototype_logits_prefer_the_class_of_a_support_example():
    cnaps = SimplifiedCNAPs(_source(), "block2").eval()
    support = torch.randn(6, 8, 4, 4)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    with torch.no_grad():
        logits = cnaps(support, labels, support[[0, 2, 4]])
    assert logits.shape == (3, 3)
    assert (logits.argmax(1) == torch.tensor([0, 1, 2])).float().mean() >= 2 / 3


def _episodes(rng, classes, n):
    episodes = []
    for _ in range(n):
        chosen = rng.choice(10, 3, replace=False)
        support, query = [], []
        for k, c in enumerate(chosen):
            rows = rng.choice(np.flatnonzero(classes == c), 6, replace=False)
            support += [(r, k) for r in rows[:3]]
            query += [(r, k) for r in rows[3:]]
        s, q = np.array(support), np.array(query)
        episodes.append((s[:, 0], s[:, 1], q[:, 0], q[:, 1]))
    return episodes


def _mean_query_loss(cnaps, pool, episodes):
    cnaps.eval()
    with torch.no_grad():
        return float(
            np.mean(
                [
                    torch.nn.functional.cross_entropy(
                        cnaps(pool[s], torch.as_tensor(sl), pool[q]), torch.as_tensor(ql)
                    ).item()
                    for s, sl, q, ql in episodes
                ]
            )
        )


def test_meta_training_lowers_the_query_loss_and_state_round_trips():
    rng = np.random.default_rng(0)
    classes = rng.integers(0, 10, 400)
    # a weak class signal buried in noise: the unadapted prototypes are mediocre
    pool = (
        torch.randn(400, 8, 4, 4)
        + torch.from_numpy(np.eye(10)[classes][:, :8, None, None] * 0.8).float()
    )
    train, held_out = _episodes(rng, classes, 150), _episodes(rng, classes, 30)
    cnaps = SimplifiedCNAPs(_source(), "block2", embedding_dim=8, hidden_dim=16)
    before = _mean_query_loss(cnaps, pool, held_out)
    meta_train(cnaps, pool, train, lr=1e-2)
    assert _mean_query_loss(cnaps, pool, held_out) < before
    copy = SimplifiedCNAPs(_source(), "block2", embedding_dim=8, hidden_dim=16)
    copy.load_adaptation_state(cnaps.adaptation_state())
    assert _mean_query_loss(copy, pool, held_out) == pytest.approx(
        _mean_query_loss(cnaps, pool, held_out)
    )


def test_a_cut_without_batch_normalisation_after_it_is_rejected():
    with pytest.raises(ValueError, match="no batch normalisation"):
        SimplifiedCNAPs(_source(), "block3")
