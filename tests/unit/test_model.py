"""The model and its search, without MLflow or Prefect."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from heartrisk import data, model
from tests.support.paths import HEART


def _train_part():
    frame = data.deduplicate(data.load_csv(HEART))
    return data.split(frame, test_size=0.2, seed=0)


def test_same_seed_same_best_params() -> None:
    x, _, y, _ = _train_part()
    a = model.search(x, y, trials=6, folds=3, repeats=2, seed=11)
    b = model.search(x, y, trials=6, folds=3, repeats=2, seed=11)
    assert a.best_params == b.best_params
    assert a.best_cv_mean == b.best_cv_mean
    assert len(a.trials) == 6


def test_progress_callback_sees_every_trial_in_order() -> None:
    x, _, y, _ = _train_part()
    seen: list[int] = []
    result = model.search(x, y, trials=4, folds=3, repeats=1, seed=1, on_trial=lambda t: seen.append(t.number))
    assert seen == [1, 2, 3, 4]
    assert result.best_cv_mean == max(t.cv_mean for t in result.trials)


def test_the_first_trial_is_scikit_learns_default_svc_on_the_same_folds() -> None:
    """The defaults are a candidate, scored exactly as an untuned pipeline, so the search cannot lose to them."""
    x, _, y, _ = _train_part()
    result = model.search(x, y, trials=3, folds=3, repeats=2, seed=4)
    first, defaults = result.trials[0], SVC().get_params()
    assert first.number == 1
    assert first.params == {"kernel": defaults["kernel"], "C": defaults["C"], "gamma": defaults["gamma"]}
    cv = RepeatedStratifiedKFold(n_splits=3, n_repeats=2, random_state=4)
    untuned = cross_val_score(make_pipeline(StandardScaler(), SVC()), x, y, cv=cv, scoring="roc_auc")
    assert (first.cv_mean, first.cv_std) == (np.mean(untuned), np.std(untuned))  # same folds, same model
    assert result.best_cv_mean >= first.cv_mean
    assert result.baselines["untuned_svc"] == (first.cv_mean, first.cv_std)
    logistic = cross_val_score(make_pipeline(StandardScaler(), LogisticRegression()), x, y, cv=cv, scoring="roc_auc")
    assert result.baselines["logistic_regression"] == (np.mean(logistic), np.std(logistic))


def test_a_search_of_n_trials_is_the_first_n_trials_of_a_longer_one() -> None:
    """Past TPE's 20 random start trials too (where hyperopt's own points_to_evaluate breaks: issue #646)."""
    x, _, y, _ = _train_part()
    short = model.search(x, y, trials=5, folds=2, repeats=1, seed=8)
    long = model.search(x, y, trials=23, folds=2, repeats=1, seed=8)
    assert len(long.trials) == 23
    assert [(t.params, t.cv_mean) for t in long.trials[:5]] == [(t.params, t.cv_mean) for t in short.trials]
    one = model.search(x, y, trials=1, folds=2, repeats=1, seed=8)
    assert [t.params for t in one.trials] == [model.DEFAULTS] and one.best_params == model.DEFAULTS


def test_the_defaults_win_a_tie() -> None:
    defaults = model.Trial(1, model.DEFAULTS, 0.9, 0.03, 0.1)
    other = model.Trial(2, {"kernel": "linear", "C": 0.01}, 0.9, 0.01, 0.1)
    assert model.choose([defaults, other]) is defaults
    better = model.Trial(3, {"kernel": "linear", "C": 0.1}, 0.91, 0.05, 0.1)
    assert model.choose([defaults, other, better]) is better


def test_calibrated_pipeline_gives_probabilities_and_keeps_one_svc() -> None:
    x, x_test, y, y_test = _train_part()
    pipe = model.svc_pipeline({"kernel": "rbf", "C": 1.0, "gamma": 0.05}, calibrated=True).fit(x, y)
    proba = pipe.predict_proba(x_test)[:, 1]
    assert np.all((proba >= 0) & (proba <= 1))
    assert len(pipe.named_steps["model"].calibrated_classifiers_) == 1  # ensemble=False: one SVC to serve
    metrics = model.evaluate(pipe, x_test, y_test)
    assert 0.75 < metrics["test_roc_auc"] <= 1.0
    low, high = model.bootstrap_auc_interval(y_test, proba, seed=0, n=200)
    assert low <= metrics["test_roc_auc"] <= high


def test_units_do_not_matter_because_the_scaler_is_fitted_with_the_model() -> None:
    """Cholesterol in mmol/l instead of mg/dl (divided by 38.67) gives the same probabilities."""
    x, x_test, y, _ = _train_part()
    params = {"kernel": "rbf", "C": 1.0, "gamma": 0.05}
    base = model.svc_pipeline(params, calibrated=True).fit(x, y).predict_proba(x_test)
    rescale = {"chol": 1 / 38.67, "trtbps": 0.133}  # mmol/l, kPa
    moved = (
        x.assign(**{c: x[c] * f for c, f in rescale.items()}),
        x_test.assign(**{c: x_test[c] * f for c, f in rescale.items()}),
    )
    other = model.svc_pipeline(params, calibrated=True).fit(moved[0], y).predict_proba(moved[1])
    assert np.allclose(base, other, atol=1e-6)


def test_bootstrap_interval_equals_sklearn_on_the_same_resamples() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    proba = rng.random(40) * 0.6 + y * 0.3
    idx = np.random.default_rng(5).integers(0, 40, size=(200, 40))
    expected = np.percentile([roc_auc_score(y[i], proba[i]) for i in idx if len(set(y[i])) == 2], [2.5, 97.5])
    assert np.allclose(model.bootstrap_auc_interval(y, proba, seed=5, n=200), expected)
