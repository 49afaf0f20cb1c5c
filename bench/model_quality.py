"""Model quality: the tuned champion pipeline next to an untuned SVC, both by repeated CV.

    python bench/model_quality.py [--trials 50]

Both are measured the same way: repeated stratified 5-fold CV (10 repeats) ROC-AUC on the de-duplicated
data. The tuned parameters come from the same search the training flow runs (same split, seed, trials).
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from _common import ROOT
from heartrisk import data, model


def repeated_cv(pipeline: Pipeline, x, y) -> tuple[float, float]:
    cv = RepeatedStratifiedKFold(n_splits=5, n_repeats=10, random_state=0)
    scores = cross_val_score(pipeline, x, y, cv=cv, scoring="roc_auc")
    return float(np.mean(scores)), float(np.std(scores))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=50)
    args = parser.parse_args()
    frame = data.deduplicate(data.load_csv(ROOT / "data" / "heart.csv"))
    x_train, _, y_train, _ = data.split(frame, test_size=0.2, seed=42)
    best = model.search(x_train, y_train, trials=args.trials, folds=5, seed=42).best_params
    x, y = data.features_and_target(frame)
    ours = repeated_cv(model.svc_pipeline(best, calibrated=True), x, y)
    peer = repeated_cv(Pipeline([("scaler", StandardScaler()), ("model", SVC())]), x, y)
    print(f"champion pipeline {best}")
    print(f"  repeated 5x10 CV ROC-AUC  {ours[0]:.4f} ± {ours[1]:.4f}")
    print(f"untuned StandardScaler + SVC()\n  repeated 5x10 CV ROC-AUC  {peer[0]:.4f} ± {peer[1]:.4f}")
    print(f"difference                  {ours[0] - peer[0]:+.4f}")


if __name__ == "__main__":
    main()
