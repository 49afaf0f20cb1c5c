"""The model and its search: SVC pipeline, hyperopt space, cross-validated objective, metrics.

The search scores each candidate by the mean stratified k-fold CV ROC-AUC on the training part only
(the scaler is fitted inside each fold by the pipeline; the test split is never used for selection).
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
from hyperopt import STATUS_OK, Trials, fmin, hp, space_eval, tpe
from scipy.stats import rankdata
from sklearn.calibration import CalibratedClassifierCV
from sklearn.metrics import accuracy_score, brier_score_loss, f1_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

SVC_MAX_ITER = 1_000_000

SPACE = hp.choice(
    "kernel",
    [
        {"kernel": "linear", "C": hp.loguniform("C_linear", math.log(1e-3), math.log(1e2))},
        {
            "kernel": "rbf",
            "C": hp.loguniform("C_rbf", math.log(1e-2), math.log(1e3)),
            "gamma": hp.loguniform("gamma_rbf", math.log(1e-4), math.log(1.0)),
        },
        {
            "kernel": "poly",
            "C": hp.loguniform("C_poly", math.log(1e-2), math.log(1e2)),
            "gamma": hp.loguniform("gamma_poly", math.log(1e-3), math.log(1.0)),
            "degree": hp.quniform("degree", 2, 4, 1),
        },
        {
            "kernel": "sigmoid",
            "C": hp.loguniform("C_sigmoid", math.log(1e-2), math.log(1e2)),
            "gamma": hp.loguniform("gamma_sigmoid", math.log(1e-4), math.log(1.0)),
        },
    ],
)


def clean_params(params: dict[str, Any]) -> dict[str, Any]:
    """hyperopt returns floats for integer choices: cast them for scikit-learn."""
    out = dict(params)
    if "degree" in out:
        out["degree"] = int(out["degree"])
    return out


def svc_pipeline(params: dict[str, Any], *, calibrated: bool, folds: int = 5) -> Pipeline:
    """Scaler + SVC; with ``calibrated`` the SVC is wrapped in sigmoid calibration.

    ``ensemble=False`` calibrates on cross-validated predictions and keeps one SVC, so serving costs
    one SVC evaluation instead of one per fold.
    """
    svc = SVC(**clean_params(params), max_iter=SVC_MAX_ITER)
    model = CalibratedClassifierCV(svc, method="sigmoid", cv=folds, ensemble=False) if calibrated else svc
    return Pipeline([("scaler", StandardScaler()), ("model", model)])


@dataclass
class Trial:
    """One evaluated candidate of the search."""

    number: int
    params: dict[str, Any]
    cv_mean: float
    cv_std: float
    seconds: float


@dataclass
class SearchResult:
    best_params: dict[str, Any]
    best_cv_mean: float
    best_cv_std: float
    trials: list[Trial] = field(default_factory=list)


def search(
    x: pd.DataFrame,
    y: pd.Series,
    *,
    trials: int,
    folds: int,
    seed: int,
    on_trial: Callable[[Trial], None] | None = None,
) -> SearchResult:
    """hyperopt TPE over :data:`SPACE`; the same data and seed give the same best params."""
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    done: list[Trial] = []

    def objective(params: dict[str, Any]) -> dict[str, Any]:
        start = time.perf_counter()
        scores = cross_val_score(svc_pipeline(params, calibrated=False), x, y, cv=cv, scoring="roc_auc")
        trial = Trial(
            number=len(done) + 1,
            params=clean_params(params),
            cv_mean=float(np.mean(scores)),
            cv_std=float(np.std(scores)),
            seconds=time.perf_counter() - start,
        )
        done.append(trial)
        if on_trial is not None:
            on_trial(trial)
        return {"loss": -trial.cv_mean, "status": STATUS_OK}

    history = Trials()
    best = fmin(
        objective,
        SPACE,
        algo=tpe.suggest,
        max_evals=trials,
        trials=history,
        rstate=np.random.default_rng(seed),
        show_progressbar=False,
    )
    best_params = clean_params(space_eval(SPACE, best))
    winner = max(done, key=lambda t: t.cv_mean)
    return SearchResult(best_params, winner.cv_mean, winner.cv_std, done)


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
