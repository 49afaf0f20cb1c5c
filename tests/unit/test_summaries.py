"""The results of a run and their renderings: the CLI's JSON contract, the text, the Prefect artifact."""

from __future__ import annotations

import json

from heartrisk.summaries import DashboardEntry, MonitorSummary
from tests.support.summaries import training

TRAIN_KEYS = [
    "run_id", "experiment", "model_name", "model_version", "promoted", "promotion_reason", "champion_version",
    "cv_roc_auc", "cv_roc_auc_std", "test_roc_auc", "test_accuracy", "test_f1", "test_brier", "test_roc_auc_ci",
    "best_params", "trials", "folds", "seed", "data_sha256", "seconds", "run_url", "registered", "registration_reason",
    "serving_runtime", "onnx_export",
    "repeats", "baselines",
]  # fmt: skip


def test_the_train_json_keeps_every_key_scripts_rely_on() -> None:
    data = training().to_json()
    assert list(data) == TRAIN_KEYS
    assert (data["model_version"], data["champion_version"], data["promoted"]) == ("4", "4", True)
    assert data["test_roc_auc_ci"] == [0.88, 0.97]
    assert json.loads(json.dumps(data)) == data
    assert data["baselines"]["untuned_svc"] == {"cv_roc_auc": 0.89, "cv_roc_auc_std": 0.03}
    assert training(promoted=False).to_json()["champion_version"] == "3"


def test_the_text_and_the_artifact_show_the_verdict_and_the_metrics() -> None:
    text = "\n".join(training().lines())
    assert "CV ROC-AUC     0.9100 ± 0.0200" in text
    assert "same folds     untuned SVC 0.8900, logistic regression 0.9000" in text
    assert "(50 trials, 5-fold CV x 5)" in text
    assert "ROC-AUC 0.9300   accuracy 0.8500   F1 0.8400   Brier 0.1100" in text
    assert "M v4: promoted to champion (CV ROC-AUC 0.9100 >= champion v3 0.9000)" in text
    assert "served by      onnxruntime (ONNX export matches scikit-learn on 241 training rows" in text
    assert "NOT promoted" in "\n".join(training(promoted=False).lines())
    assert "nothing new registered (same as v3)" in "\n".join(training(False, registered=False).lines())
    markdown = training().markdown()
    assert "| test ROC-AUC | 0.9300 |" in markdown and "champion before: 0.9000 (v3)" in markdown
    assert "| CV ROC-AUC, untuned SVC | 0.8900 |" in markdown
    assert "[MLflow run](http://mlflow/#/experiments/1/runs/run1)" in markdown
    assert "**Served by**: onnxruntime (ONNX export matches scikit-learn" in markdown


def test_a_monitor_run_with_too_little_data_has_no_report_keys() -> None:
    quiet = MonitorSummary("log", "ref.csv", 10, 303, 0.5, "not enough data", False, None, [])
    data = quiet.to_json()
    assert set(data) == {
        "current_source", "reference", "current_rows", "sampled_rows", "reference_rows", "threshold", "status",
        "drift_detected", "share", "drifted_columns", "email", "model_versions",
    }  # fmt: skip
    assert "not enough data (10 current rows)" in "\n".join(quiet.lines())
    full = MonitorSummary("log", "ref.csv", 300, 303, 0.5, "drift", True, 0.6, ["age"], [{"column": "age"}], "r.html")
    assert {"columns", "report_path", "latest_report", "mlflow", "retraining", "email"} <= set(full.to_json())
    assert {"prediction_drift", "dashboard"} <= set(full.to_json())


def test_the_monitor_json_keeps_its_first_keys_in_order_and_puts_sampled_rows_next_to_current_rows() -> None:
    first = [
        "current_source", "reference", "current_rows", "reference_rows", "threshold", "status", "drift_detected",
        "share", "drifted_columns", "columns", "report_path", "latest_report", "mlflow", "retraining", "email",
    ]  # fmt: skip
    drift = {"detected": True, "score": 1e-9, "method": "K-S p_value", "threshold": 0.05}
    drift |= {
        "mean_probability": {"current": 0.6, "reference": 0.4},
        "positive_rate": {"current": 0.7, "reference": 0.3},
    }
    sampled = MonitorSummary(
        "log", "ref.csv", 10_000_000, 303, 0.5, "drift", True, 0.6, ["age"], [{"column": "age"}], "r.html",
        sampled_rows=1_000_000, model_versions={"3": 10_000_000}, prediction_drift=drift,
        dashboard=DashboardEntry("p", "s", "http://127.0.0.1:8001/projects/p/reports/s"),
    )  # fmt: skip
    keys = list(sampled.to_json())
    assert [key for key in keys if key in first] == first
    assert keys[keys.index("current_rows") + 1] == "sampled_rows"
    assert sampled.to_json()["prediction_drift"]["detected"] is True
    text = "\n".join(sampled.lines())
    assert "10000000 current rows, 1000000 of them compared (a random sample)" in text
    assert "model versions   v3: 10000000" in text
    assert "dashboard        http://127.0.0.1:8001/projects/p/reports/s" in text
    assert "the probability drifted (K-S p_value 1e-09, threshold 0.05)" in text
