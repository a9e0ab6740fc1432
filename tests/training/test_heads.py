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
    result = retrain_head(x[:160], y[:160], x[160:], y[160:], method=method, epochs=20) \
        if method == "sgd" else retrain_head(x[:160], y[:160], x[160:], y[160:], method=method)
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
    reference = LogisticRegression(C=0.5, tol=1e-10, max_iter=10000).fit(scaler.transform(train_x), train_y)
    probs = reference.predict_proba(scaler.transform(test_x))
    assert result.test_log_likelihood == pytest.approx(np.log(probs[np.arange(100), test_y]).mean(), abs=1e-4)
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
    table = retrain_heads(train_x, train_sets, test_x, test_sets, method=method,
                          task_names=list("abcd"), **options)
    assert table["task"].tolist() == list("abcd")
    for t, name in enumerate("abcd"):
        rows_train, rows_test = train_sets[t] >= 0, test_sets[t] >= 0
        # a task's head does not depend on the tasks that share its batch (SGD shuffles with
        # the stream [seed, task name])
        single = retrain_heads(train_x[rows_train], [train_sets[t][rows_train]],
                               test_x[rows_test], [test_sets[t][rows_test]], method=method,
                               task_names=[name], **options).iloc[0]
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
