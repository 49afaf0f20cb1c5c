"""The model and its search: SVC pipeline, hyperopt space, cross-validated objective, metrics.

The search scores each candidate by the mean ROC-AUC over repeated stratified k-fold CV on the training
part only (the scaler is fitted inside each fold by the pipeline; the test split is never used for
selection), starting from scikit-learn's defaults, so it cannot choose anything that scores below them.
ROC-AUC depends only on the ranking of scores and Platt (sigmoid) calibration is monotone, so the
search ranks the bare SVC decision function; the registered model adds the calibration that turns it
into probabilities.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from hyperopt import STATUS_OK, Trials, fmin, hp, tpe
from scipy.stats import rankdata
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, brier_score_loss, f1_score, roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from heartrisk._compat.hyperopt import finished_history

SVC_MAX_ITER = 1_000_000

# Linear and RBF kernels only: with poly (degree 2 to 4) and sigmoid kernels as well, the search found more
# candidates that were lucky on its folds, and the whole procedure scored lower on unseen patients
# (nested CV, docs/BENCHMARKS.md).
SPACE = hp.choice(
    "kernel",
    [
        {"kernel": "linear", "C": hp.loguniform("C_linear", math.log(1e-3), math.log(1e2))},
        {
            "kernel": "rbf",
            "C": hp.loguniform("C_rbf", math.log(1e-2), math.log(1e3)),
            # "scale", SVC()'s own gamma, is 1 / (13 features x variance 1) after the scaler only up to
            # rounding: as a choice of its own, the defaults are a point of the space exactly
            "gamma": hp.choice("gamma_rbf", ["scale", hp.loguniform("gamma_rbf_value", math.log(1e-4), math.log(1.0))]),
        },
    ],
)


# scikit-learn's SVC() as a point of SPACE (choice indices and values), evaluated before any search: the
# search then cannot return a configuration that scores below the defaults on its own folds.
DEFAULTS = {"kernel": "rbf", "C": 1.0, "gamma": "scale"}
DEFAULT_POINT = {"kernel": 1, "C_rbf": 1.0, "gamma_rbf": 0}


def svc_pipeline(params: dict[str, Any], *, calibrated: bool, folds: int = 5) -> Pipeline:
    """Scaler + SVC; with ``calibrated`` the SVC is wrapped in sigmoid calibration.

    ``ensemble=False`` calibrates on cross-validated predictions and keeps one SVC, so serving costs
    one SVC evaluation instead of one per fold.
    """
    svc = SVC(**params, max_iter=SVC_MAX_ITER)
    model = CalibratedClassifierCV(svc, method="sigmoid", cv=folds, ensemble=False) if calibrated else svc
    return Pipeline([("scaler", StandardScaler()), ("model", model)])


def logistic_pipeline() -> Pipeline:
    """The peer a reader knows: scaler + scikit-learn's default logistic regression."""
    return Pipeline([("scaler", StandardScaler()), ("model", LogisticRegression())])


@dataclass
class Trial:
    """One evaluated candidate of the search: its mean and spread over the CV folds."""

    number: int
    params: dict[str, Any]
    cv_mean: float
    cv_std: float
    seconds: float


@dataclass
class SearchResult:
    """The chosen candidate, every trial, and the untuned peers scored on the same folds (mean, sd)."""

    best_params: dict[str, Any]
    best_cv_mean: float
    best_cv_std: float
    trials: list[Trial] = field(default_factory=list)
    baselines: dict[str, tuple[float, float]] = field(default_factory=dict)


def cv_splits(*, folds: int, repeats: int, seed: int) -> RepeatedStratifiedKFold:
    """The folds every candidate and baseline is scored on: ``repeats`` shuffles of stratified k-fold."""
    return RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)


def cv_roc_auc(pipeline: Pipeline, x: pd.DataFrame, y: pd.Series, cv: RepeatedStratifiedKFold) -> np.ndarray:
    """ROC-AUC of each fold; plain arrays, because scikit-learn's column-name checks cost more than the fit."""
    return cross_val_score(pipeline, np.asarray(x, dtype=float), np.asarray(y), cv=cv, scoring="roc_auc")


def search(
    x: pd.DataFrame,
    y: pd.Series,
    *,
    trials: int,
    folds: int,
    repeats: int,
    seed: int,
    on_trial: Callable[[Trial], None] | None = None,
) -> SearchResult:
    """hyperopt TPE over :data:`SPACE`, scikit-learn's defaults first; the same data and seed give the same result.

    Every candidate is scored on the same folds: ``repeats`` shuffles of stratified ``folds``-fold CV,
    because one 5-fold split of 240 rows moves a score by more than the candidates differ. ``trials``
    counts the defaults, and a search of n trials is the first n trials of a longer one. The untuned
    peers (the defaults, and a logistic regression) are reported on the same folds.
    """
    cv = cv_splits(folds=folds, repeats=repeats, seed=seed)
    done: list[Trial] = []

    def objective(params: dict[str, Any]) -> dict[str, Any]:
        start = time.perf_counter()
        scores = cv_roc_auc(svc_pipeline(params, calibrated=False), x, y, cv)
        seconds = time.perf_counter() - start
        trial = Trial(len(done) + 1, dict(params), float(np.mean(scores)), float(np.std(scores)), seconds)
        done.append(trial)
        if on_trial is not None:
            on_trial(trial)
        return {"loss": -trial.cv_mean, "status": STATUS_OK}

    history = defaults_done(objective(DEFAULTS))
    fmin(
        objective,
        SPACE,
        tpe.suggest,
        trials,
        trials=history,
        rstate=np.random.default_rng(seed),
        show_progressbar=False,
    )
    winner = choose(done)
    logistic = cv_roc_auc(logistic_pipeline(), x, y, cv)
    baselines = {
        "untuned_svc": (done[0].cv_mean, done[0].cv_std),  # the first trial is scikit-learn's SVC()
        "logistic_regression": (float(np.mean(logistic)), float(np.std(logistic))),
    }
    return SearchResult(winner.params, winner.cv_mean, winner.cv_std, done, baselines)


def defaults_done(result: dict[str, Any]) -> Trials:
    """A hyperopt history holding one finished trial, the defaults, for TPE to build on.

    ``fmin(points_to_evaluate=[DEFAULT_POINT])`` would evaluate them itself, but it leaves out the labels
    of the branches not taken (the other kernels), and TPE then fails with a KeyError once it models
    the history (hyperopt issue #646); and with ``max_evals=1`` it evaluates nothing. The labels are
    given here as empty, as in the trials TPE makes itself, and ``max_evals`` counts the defaults.
    """
    return finished_history(SPACE, DEFAULT_POINT, result)


def choose(trials: list[Trial]) -> Trial:
    """The best mean; on a tie the earlier trial, so the defaults win every tie."""
    return max(trials, key=lambda t: (t.cv_mean, -t.number))


def evaluate(pipeline: Pipeline, x: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    """Held-out metrics of a fitted pipeline."""
    proba = pipeline.predict_proba(x)[:, 1]
    label = (proba >= 0.5).astype(int)
    return {
        "test_roc_auc": float(roc_auc_score(y, proba)),
        "test_accuracy": float(accuracy_score(y, label)),
        "test_f1": float(f1_score(y, label)),
        "test_brier": float(brier_score_loss(y, proba)),
    }


def bootstrap_auc_interval(y: pd.Series, proba: np.ndarray, *, seed: int, n: int = 1000) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the test ROC-AUC (the test split is small).

    ROC-AUC is the Mann-Whitney U statistic scaled to [0, 1], so all resamples are scored at once from
    their ranks instead of calling ``roc_auc_score`` a thousand times.
    """
    rng = np.random.default_rng(seed)
    y_arr, p_arr = np.asarray(y), np.asarray(proba)
    idx = rng.integers(0, len(y_arr), size=(n, len(y_arr)))
    labels, scores = y_arr[idx], p_arr[idx]
    positives = labels.sum(axis=1)
    negatives = labels.shape[1] - positives
    usable = (positives > 0) & (negatives > 0)
    ranks = rankdata(scores, axis=1)
    u = (ranks * labels).sum(axis=1) - positives * (positives + 1) / 2
    aucs = u[usable] / (positives[usable] * negatives[usable])
    low, high = np.percentile(aucs, [2.5, 97.5])
    return float(low), float(high)
