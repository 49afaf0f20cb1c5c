"""Results as a finished run would return them, for the tests of their renderings."""

from __future__ import annotations

from heartrisk.summaries import Promotion, TrainingSummary


def training(promoted: bool = True, registered: bool = True) -> TrainingSummary:
    promotion = Promotion(promoted, "4", 0.91, "3", 0.9, "CV ROC-AUC 0.9100 >= champion v3 0.9000")
    metrics = {"test_roc_auc": 0.93, "test_accuracy": 0.85, "test_f1": 0.84, "test_brier": 0.11}
    return TrainingSummary(
        "run1", "exp", "M", 0.91, 0.02, metrics, (0.88, 0.97), {"kernel": "rbf", "C": 1.0}, 50, 5, 42, "ab", 7.5,
        "http://mlflow/#/experiments/1/runs/run1", promotion, registered, "" if registered else "same as v3",
        "onnxruntime", "ONNX export matches scikit-learn on 241 training rows (largest difference 2.4e-06)",
        5, {"untuned_svc": (0.89, 0.03), "logistic_regression": (0.9, 0.025)},
    )  # fmt: skip
