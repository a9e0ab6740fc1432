import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.preprocessing import StandardScaler

from transferlib.training import HEAD_METHODS, HeadResult, retrain_head, retrain_heads
from transferlib.training.heads import macro_f1


def blobs(n, num_classes=3, dim=8, separation=4.0, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_classes, dim)) * separation
    labels = np.arange(n) % num_classes
    return centres[labels] + rng.normal(size=(n, dim)), labels


@pytest.mark.parametrize("method", HEAD_METHODS)
def test_every_method_solves_an_easy_problem(method):
    x, y = blobs(240)
    result = (
        retrain_head(x[:160], y[:160], x[160:], y[160:], method=method, epochs=20)
        if method == "sgd"
        else retrain_head(x[:160], y[:160], x[160:], y[160:], method=method)
    )
    assert isinstance(result, HeadResult)
    assert result.accuracy == 1.0 and result.macro_f1 == 1.0 and result.train_accuracy == 1.0
    assert -0.2 < result.test_log_likelihood <= 0.0
    assert -0.2 < result.train_log_likelihood <= 0.0
    assert (result.num_classes, result.n_train, result.n_test) == (3, 160, 80)


# n > D, and n < D (solved in the row space of the features)
@pytest.mark.parametrize(("n_train", "dim", "separation"), [(200, 8, 0.6), (40, 100, 0.1)])
def test_logistic_matches_scikit_learn_multinomial(n_train, dim, separation):
    x, y = blobs(n_train + 100, num_classes=4, dim=dim, separation=separation, seed=3)
    train_x, train_y, test_x, test_y = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    result = retrain_head(train_x, train_y, test_x, test_y, method="logistic", C=0.5, tol=1e-7)
    scaler = StandardScaler().fit(train_x)
    reference = LogisticRegression(C=0.5, tol=1e-10, max_iter=10000).fit(
        scaler.transform(train_x), train_y
    )
    probs = reference.predict_proba(scaler.transform(test_x))
    assert result.test_log_likelihood == pytest.approx(
        np.log(probs[np.arange(100), test_y]).mean(), abs=1e-4
    )
    assert result.accuracy == pytest.approx((probs.argmax(1) == test_y).mean())
    assert 0.3 < result.accuracy < 1.0  # a problem where the penalty matters


@pytest.mark.parametrize("method", HEAD_METHODS)
def test_batched_heads_agree_with_looped_heads(method):
    x, y = blobs(300, num_classes=4, separation=0.8, seed=1)
    rng = np.random.default_rng(5)
    train_x, test_x = x[:200], x[200:]
    train_sets, test_sets = [], []
    # tasks on different subsets with 2, 3 and 4 classes; -1 = sample not in the task
    for k in (2, 3, 4, 2):
        keep_train = (y[:200] < k) & (rng.random(200) < 0.8)
        keep_test = y[200:] < k
        train_sets.append(np.where(keep_train, y[:200], -1))
        test_sets.append(np.where(keep_test, y[200:], -1))
    options = {"epochs": 5, "seed": 7} if method == "sgd" else {}
    table = retrain_heads(
        train_x, train_sets, test_x, test_sets, method=method, task_names=list("abcd"), **options
    )
    assert table["task"].tolist() == list("abcd")
    for t, name in enumerate("abcd"):
        rows_train, rows_test = train_sets[t] >= 0, test_sets[t] >= 0
        # a task's head does not depend on the tasks that share its batch (SGD shuffles with
        # the stream [seed, task name])
        single = retrain_heads(
            train_x[rows_train],
            [train_sets[t][rows_train]],
            test_x[rows_test],
            [test_sets[t][rows_test]],
            method=method,
            task_names=[name],
            **options,
        ).iloc[0]
        row = table.iloc[t]
        assert row["n_train"] == single["n_train"] and row["num_classes"] == single["num_classes"]
        for field in ("accuracy", "macro_f1", "test_log_likelihood", "train_log_likelihood"):
            assert row[field] == pytest.approx(single[field], abs=2e-4), field


def test_macro_f1_matches_scikit_learn():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 5, size=(3, 50))
    y_pred = rng.integers(0, 4, size=(3, 50))
    valid = rng.random((3, 50)) < 0.7
    ours = macro_f1(torch.from_numpy(y_true), torch.from_numpy(y_pred), torch.from_numpy(valid), 5)
    for t in range(3):
        expected = f1_score(y_true[t][valid[t]], y_pred[t][valid[t]], average="macro")
        assert float(ours[t]) == pytest.approx(expected)


def test_svm_log_likelihood_is_finite_on_overlapping_classes():
    x, y = blobs(200, num_classes=2, separation=0.3, seed=4)
    result = retrain_head(x[:150], y[:150], x[150:], y[150:], method="linear_svm")
    assert np.isfinite(result.test_log_likelihood) and result.test_log_likelihood < -0.1
    assert result.train_log_likelihood > np.log(0.5) - 0.05  # calibration beats a coin flip


def test_bad_input_is_rejected():
    x, y = blobs(60)
    with pytest.raises(ValueError, match="unknown head method"):
        retrain_head(x, y, x, y, method="knn")
    with pytest.raises(ValueError, match="59 labels but the features have 60"):
        retrain_head(x, y[:-1], x, y)
    with pytest.raises(ValueError, match="1 class"):
        retrain_head(x, np.zeros(60, dtype=int), x, y)
    with pytest.raises(ValueError, match="NaN or inf"):
        retrain_head(np.where(np.eye(60, 8) > 0, np.nan, x), y, x, y)
    with pytest.raises(ValueError, match="never occur"):
        retrain_head(x[y < 2], y[y < 2], x, y)
    with pytest.raises(ValueError, match="columns"):
        retrain_head(x, y, x[:, :3], y)
    with pytest.raises(TypeError, match="unexpected option"):
        retrain_head(x, y, x, y, method="logistic", epochs=3)
    with pytest.raises(TypeError, match="integer"):
        retrain_head(x, y.astype(float), x, y)
    with pytest.raises(ValueError, match="2 training label sets but 1"):
        retrain_heads(x, [y, y], x, [y])


def test_binary_logistic_is_scikit_learns_binomial_model():
    # One weight vector penalised once: a two-column softmax penalising both vectors would halve
    # the effective penalty and give a different (less regularised) head.
    x, y = blobs(140, num_classes=2, dim=40, separation=0.35, seed=8)
    train_x, train_y, test_x, test_y = x[:40], y[:40], x[40:], y[40:]
    result = retrain_head(
        train_x, train_y, test_x, test_y, "logistic", C=0.05, tol=1e-7, max_iter=1000
    )
    scaler = StandardScaler().fit(train_x)
    reference = LogisticRegression(C=0.05, tol=1e-10, max_iter=10000).fit(
        scaler.transform(train_x), train_y
    )
    probs = reference.predict_proba(scaler.transform(test_x))
    expected = np.log(probs[np.arange(len(test_y)), test_y]).mean()
    assert result.test_log_likelihood == pytest.approx(expected, abs=1e-4)


def test_logistic_ftol_only_stops_earlier():
    # ftol is a stopping test and nothing else: a task stopped by it has the head it would have
    # after that many iterations without it; off (0) is the default rule.
    x, y = blobs(300, num_classes=4, dim=30, separation=0.5, seed=4)
    sets = [y % 2, y, np.where(y < 3, y, 2)]
    args = (x[:200], [s[:200] for s in sets], x[200:], [s[200:] for s in sets], "logistic")
    default = retrain_heads(*args)
    assert retrain_heads(*args, ftol=0.0).equals(default)
    early = retrain_heads(*args, ftol=1e-2)
    assert (early["iterations"] <= default["iterations"]).all()
    assert (early["iterations"] < default["iterations"]).any()
    for t, used in enumerate(early["iterations"]):
        one = [args[0], [args[1][t]], args[2], [args[3][t]], "logistic"]
        capped = retrain_heads(*one, max_iter=int(used)).iloc[0]
        assert capped["test_log_likelihood"] == pytest.approx(
            early["test_log_likelihood"].iloc[t], abs=1e-5
        )
    with pytest.raises(ValueError, match="ftol"):
        retrain_heads(*args, ftol=-1.0)


def test_logistic_ftol_does_not_stop_at_the_short_first_step():
    # The first L-BFGS step has no curvature and is short (length 1 in l1): with many classes
    # and dimensions it gains less than 1% (here), and stopping there would leave a head with
    # the chance log-likelihood log(1/30) = -3.4.
    x, y = blobs(900, num_classes=30, dim=300, separation=0.25, seed=6)
    table = retrain_heads(x[:600], [y[:600]], x[600:], [y[600:]], "logistic", ftol=1e-2)
    assert table["iterations"].iloc[0] >= 2
    assert table["test_log_likelihood"].iloc[0] > -2.0


def test_logistic_tasks_on_different_rows_match_their_own_fits():
    # Tasks on overlapping and disjoint subsets of the rows (solved in row groups, with the
    # standardisation folded into the weights) agree with scikit-learn task by task.
    x, y = blobs(400, num_classes=5, dim=12, separation=0.7, seed=2)
    rng = np.random.default_rng(0)
    train_sets, test_sets = [], []
    for k, keep in ((2, 0.3), (3, 0.9), (5, 1.0), (4, 0.2)):
        rows = (y[:300] < k) & (rng.random(300) < keep)
        train_sets.append(np.where(rows, y[:300], -1))
        test_sets.append(np.where(y[300:] < k, y[300:], -1))
    table = retrain_heads(
        x[:300], train_sets, x[300:], test_sets, "logistic", C=0.5, tol=1e-7, max_iter=1000
    )
    for t, (train, test) in enumerate(zip(train_sets, test_sets)):
        keep_train, keep_test = train >= 0, test >= 0
        scaler = StandardScaler().fit(x[:300][keep_train])
        reference = LogisticRegression(C=0.5, tol=1e-10, max_iter=10000).fit(
            scaler.transform(x[:300][keep_train]), train[keep_train]
        )
        probs = reference.predict_proba(scaler.transform(x[300:][keep_test]))
        codes = np.searchsorted(reference.classes_, test[keep_test])
        expected = np.log(probs[np.arange(len(codes)), codes]).mean()
        assert table["test_log_likelihood"].iloc[t] == pytest.approx(expected, abs=2e-4)
        assert table["iterations"].iloc[t] > 0


def _reference_sgd(z, y, k, lr, batch_size, epochs, seed, name):
    """Plain per-task SGD from zero on standardised features, one sample list per batch."""
    from transferlib.training.heads import _task_stream

    generator = torch.Generator().manual_seed(_task_stream(seed, name))
    weight, bias = np.zeros((z.shape[1], k)), np.zeros(k)
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator).numpy()
        for start in range(0, len(y), batch_size):
            idx = order[start : start + batch_size]
            logits = z[idx] @ weight + bias
            probs = np.exp(logits - logits.max(1, keepdims=True))
            probs /= probs.sum(1, keepdims=True)
            probs[np.arange(len(idx)), y[idx]] -= 1
            weight -= lr * z[idx].T @ probs / len(idx)
            bias -= lr * probs.mean(0)
    return weight, bias


def test_sgd_heads_follow_plain_sgd_also_in_the_reduced_row_space():
    # 30 samples in 50 dimensions: the solver works in the samples' row space, which is exact
    # for SGD from zero; 120 samples in 8 dimensions: no reduction.
    for n, dim in ((30, 50), (120, 8)):
        x, y = blobs(n + 40, num_classes=3, dim=dim, separation=0.5, seed=n)
        result = retrain_heads(
            x[:n],
            [y[:n]],
            x[n:],
            [y[n:]],
            "sgd",
            task_names=["t"],
            lr=0.05,
            batch_size=7,
            epochs=3,
            seed=11,
        ).iloc[0]
        mean, std = x[:n].mean(0), x[:n].std(0)
        weight, bias = _reference_sgd((x[:n] - mean) / std, y[:n], 3, 0.05, 7, 3, 11, "t")
        logits = ((x[n:] - mean) / std) @ weight + bias
        log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        expected = log_probs[np.arange(40), y[n:]].mean()
        assert result["test_log_likelihood"] == pytest.approx(expected, abs=1e-4)
