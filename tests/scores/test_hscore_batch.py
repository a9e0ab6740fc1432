"""Batched H-scores against the one-at-a-time h_score, on NumPy and torch."""

import subprocess
import sys

import numpy as np
import pytest

from transferlib.scores import h_score, h_scores


def _data(seed, n=240, d=10, m=6, k=5):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, (n, m))
    x = rng.standard_normal((n, d))
    x[:, : min(d, m)] += 1.5 * labels[:, : min(d, m)]  # columns informative to different degrees
    return x, labels


@pytest.mark.parametrize("n,d", [(240, 10), (40, 90), (120, 119)])
def test_every_column_matches_h_score(n, d):
    x, labels = _data(0, n=n, d=d)
    expected = [h_score(x, labels[:, j]) for j in range(labels.shape[1])]
    np.testing.assert_allclose(h_scores(x, labels), expected, rtol=1e-8, atol=1e-10)


def test_rank_deficient_features_use_the_pseudo_inverse():
    x, labels = _data(1)
    duplicated = np.hstack([x, x[:, :4] @ np.ones((4, 3))])
    expected = [h_score(duplicated, labels[:, j]) for j in range(labels.shape[1])]
    np.testing.assert_allclose(h_scores(duplicated, labels), expected, rtol=1e-8)
    np.testing.assert_allclose(h_scores(duplicated, labels), h_scores(x, labels), rtol=1e-8)


def test_columns_with_different_label_types_and_class_counts():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, 150)
    x = rng.standard_normal((150, 6)) + np.eye(4, 6)[y]
    labels = np.stack([y * 10 - 7, y % 2, np.where(y > 1, 2.5, -1.0), np.full(150, 3)], axis=1)
    scores = h_scores(x, labels)
    expected = [h_score(x, labels[:, j]) for j in range(3)] + [0.0]
    np.testing.assert_allclose(scores, expected, rtol=1e-8, atol=1e-12)
    strings = np.array(["a", "b", "c", "d"])[y][:, None]
    assert h_scores(x, strings)[0] == pytest.approx(h_score(x, y), rel=1e-10)


def test_normalised_divides_by_classes_minus_one():
    x, labels = _data(3, k=4)
    labels[:, -1] = 0
    normalised = h_scores(x, labels, normalised=True)
    np.testing.assert_allclose(normalised[:-1], h_scores(x, labels)[:-1] / 3, rtol=1e-12)
    assert np.isnan(normalised[-1])


def test_many_columns_span_several_blocks(monkeypatch):
    from transferlib.scores import hscore_batch

    monkeypatch.setattr(hscore_batch, "_BLOCK_NONZEROS", 3 * 240)  # 3 columns per block
    x, labels = _data(4, m=8)
    expected = [h_score(x, labels[:, j]) for j in range(8)]
    np.testing.assert_allclose(h_scores(x, labels), expected, rtol=1e-8)


def test_one_hot_features_reach_the_bound_and_permuted_labels_do_not():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 6, 400)
    labels = np.stack([y, rng.permutation(y)], axis=1)
    scores = h_scores(np.eye(6)[y], labels)
    assert scores[0] == pytest.approx(5.0, abs=1e-9)
    assert scores[1] < 0.2


def test_torch_tensors_are_computed_with_torch():
    torch = pytest.importorskip("torch")
    x, labels = _data(6)
    expected = h_scores(x, labels)
    result = h_scores(torch.tensor(x, dtype=torch.float32), torch.tensor(labels))
    assert isinstance(result, np.ndarray)
    np.testing.assert_allclose(result, expected, rtol=1e-4)


def test_numpy_input_never_imports_torch():
    code = (
        "import sys, numpy as np\n"
        "from transferlib.scores.hscore_batch import h_scores\n"
        "h_scores(np.random.default_rng(0).normal(size=(30, 3)), np.arange(60).reshape(30, 2) % 3)\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    "features, labels, error, message",
    [
        (np.ones((10, 2)), np.zeros(10, dtype=int), ValueError, "2-D"),
        (np.ones((10, 2)), np.zeros((9, 3), dtype=int), ValueError, "length mismatch"),
        (np.ones((10, 2)), np.zeros((10, 0), dtype=int), ValueError, "empty"),
        (np.ones((10, 2)), np.full((10, 2), np.nan), ValueError, "NaN"),
        (np.ones((10, 2)), np.empty((10, 2), dtype=object), TypeError, "one dtype"),
        (np.full((10, 2), np.inf), np.zeros((10, 2), dtype=int), ValueError, "NaN or inf"),
        (np.ones(10), np.zeros((10, 2), dtype=int), ValueError, "2-D"),
    ],
)
def test_bad_input_names_the_argument(features, labels, error, message):
    with pytest.raises(error, match=message):
        h_scores(features, labels)


def test_bad_options_are_refused():
    x, labels = _data(7)
    with pytest.raises(TypeError, match="normalised"):
        h_scores(x, labels, normalised=1)
    with pytest.raises(ValueError, match="rtol"):
        h_scores(x, labels, rtol=-1.0)


def test_docstring_example_runs():
    import doctest

    from transferlib.scores import hscore_batch

    result = doctest.testmod(hscore_batch, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
