"""Drift computation on synthetic data: shifted columns drift, the rest do not, numbers match Evidently; the
model's output drifts on its own, and the snapshot carries what the dashboard charts."""

from __future__ import annotations

import pandas as pd
import pytest
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

from heartrisk.drift import shared_columns
from heartrisk.evidently_report import compute_drift
from heartrisk.schema import FEATURE_NAMES
from tests.support.frames import synthetic, with_predictions

# The column types as the README's data dictionary documents them, written out here on purpose: a wrong
# type in the schema must not agree with itself.
MEASUREMENTS = ["age", "trtbps", "chol", "thalachh", "oldpeak"]
CODES = ["sex", "cp", "fbs", "restecg", "exng", "slp", "caa", "thall", "output"]
BINARY = {"sex", "fbs", "exng", "output"}


def shifted(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The same rows shuffled (unchanged distributions) with two measurements moved by a clear amount."""
    moved = frame.sample(frac=1, random_state=seed).reset_index(drop=True)
    moved["chol"] = moved["chol"] + 120
    moved["thalachh"] = moved["thalachh"] - 40
    return moved


def evidently_direct(current: pd.DataFrame, reference: pd.DataFrame) -> dict:
    """Evidently's own preset on the same frames, with the documented types, read without our parser."""
    definition = DataDefinition(numerical_columns=MEASUREMENTS, categorical_columns=CODES)
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    return snapshot.dict()


def test_clearly_shifted_columns_drift_and_the_others_do_not() -> None:
    reference = synthetic(1)
    current = shifted(reference, seed=2)
    result, _ = compute_drift(current, reference, threshold=0.5)
    assert sorted(result.drifted_columns) == ["chol", "thalachh"]
    assert result.drifted_count == 2
    assert result.share == pytest.approx(2 / 14)
    assert result.drift_detected is False
    by_column = {c.column: c for c in result.columns}
    assert by_column["chol"].score < by_column["chol"].threshold < by_column["age"].score


@pytest.mark.parametrize(
    ("rows", "measurement", "binary", "coded"),
    [
        (600, "K-S p_value", "Z-test p_value", "chi-square p_value"),
        (1500, "Wasserstein distance (normed)", "Jensen-Shannon distance", "Jensen-Shannon distance"),
    ],
)
def test_each_column_gets_the_test_its_documented_type_calls_for(
    rows: int, measurement: str, binary: str, coded: str
) -> None:
    """Evidently picks the test from the column type (and the sample size), so a wrong type shows here."""
    reference = synthetic(3, rows)
    result, _ = compute_drift(shifted(reference, seed=4), reference, threshold=0.5)
    expected = dict.fromkeys(MEASUREMENTS, measurement) | {c: binary if c in BINARY else coded for c in CODES}
    assert {c.column: c.method for c in result.columns} == expected


def test_share_and_verdicts_match_evidentlys_own_numbers() -> None:
    reference = synthetic(3)
    current = shifted(reference, seed=4)
    result, _ = compute_drift(current, reference, threshold=0.5)
    direct = evidently_direct(current, reference)
    count = next(m for m in direct["metrics"] if m["metric_name"].startswith("DriftedColumnsCount"))
    assert result.share == pytest.approx(count["value"]["share"])
    assert result.drifted_count == int(count["value"]["count"])
    prefix = "Value Drift for column "
    failed = {t["name"].removeprefix(prefix) for t in direct["tests"] if t["status"] == "FAIL" and prefix in t["name"]}
    assert set(result.drifted_columns) == failed
    scores = {
        m["metric_name"].split("(column=")[1].split(",")[0]: m["value"]
        for m in direct["metrics"]
        if "ValueDrift" in m["metric_name"]
    }
    assert {c.column: c.score for c in result.columns} == pytest.approx(scores)


def test_dataset_verdict_uses_the_threshold_not_one_column() -> None:
    reference = synthetic(5)
    current = shifted(reference, seed=6)
    low, _ = compute_drift(current, reference, threshold=0.1)
    high, _ = compute_drift(current, reference, threshold=0.5)
    assert low.share == high.share
    assert low.drift_detected is True
    assert high.drift_detected is False


def test_served_data_without_label_compares_only_the_features() -> None:
    reference = synthetic(7)
    served = synthetic(8)[list(FEATURE_NAMES)]
    assert shared_columns(served, reference) == list(FEATURE_NAMES)
    result, _ = compute_drift(served, reference, threshold=0.5)
    assert [c.column for c in result.columns] == list(FEATURE_NAMES)
    assert {c.column for c in result.columns if c.kind == "numeric"} == set(MEASUREMENTS)


def test_clearly_shifted_probabilities_are_prediction_drift_and_the_same_distribution_is_not() -> None:
    reference = with_predictions(synthetic(9)[list(FEATURE_NAMES)], seed=10)
    same = with_predictions(synthetic(11)[list(FEATURE_NAMES)], seed=12)
    shifted_up = with_predictions(synthetic(11)[list(FEATURE_NAMES)], seed=12, shift=0.25)

    quiet, _ = compute_drift(same, reference, threshold=0.5)
    assert quiet.prediction is not None and quiet.prediction.detected is False
    assert quiet.prediction.probability.score > quiet.prediction.probability.threshold  # a p-value: high is no drift

    moved, _ = compute_drift(shifted_up, reference, threshold=0.5)
    assert moved.prediction is not None and moved.prediction.detected is True
    assert moved.prediction.probability.method == "K-S p_value"
    assert moved.prediction.probability.score < 1e-6
    current_mean, reference_mean = moved.prediction.mean_probability
    assert current_mean == pytest.approx(shifted_up["probability"].mean())
    assert reference_mean == pytest.approx(reference["probability"].mean())
    assert moved.prediction.positive_rate[0] > moved.prediction.positive_rate[1]
    assert moved.prediction.to_json()["detected"] is True

    # the model's output is its own result: the inputs, the same in both runs, give the same share
    assert [c.column for c in moved.columns] == list(FEATURE_NAMES)
    assert (moved.share, moved.drifted_count) == (quiet.share, quiet.drifted_count)


def test_without_served_predictions_on_both_sides_there_is_no_prediction_drift() -> None:
    reference = with_predictions(synthetic(13)[list(FEATURE_NAMES)], seed=14)
    result, _ = compute_drift(synthetic(15)[list(FEATURE_NAMES)], reference, threshold=0.5)
    assert result.prediction is None
    assert len(result.columns) == len(FEATURE_NAMES)


def test_the_snapshot_carries_the_windows_rows_per_model_version_for_the_dashboard() -> None:
    reference = with_predictions(synthetic(16)[list(FEATURE_NAMES)], seed=17)
    current = with_predictions(synthetic(18, rows=500)[list(FEATURE_NAMES)], seed=19)
    _, snapshot = compute_drift(current, reference, 0.5, versions={"3": 4000, "4": 1000}, metadata={"source": "log"})
    data = snapshot.dict()
    values = {}
    for metric in data["metrics"]:
        config = metric["config"]
        values[config["type"].rsplit(":", 1)[1], config.get("model_version") or config.get("column")] = metric["value"]
    assert values[("WindowRows", None)] == 5000  # the whole window, though Evidently compared 500 rows
    assert values[("RowCount", None)] == 500
    assert (values[("ModelVersionRows", "3")], values[("ModelVersionRows", "4")]) == (4000, 1000)
    assert values[("MeanValue", "probability")] == pytest.approx(current["probability"].mean())
    assert values[("CategoryCount", "label")]["share"] == pytest.approx(current["label"].mean())
    stored = snapshot.to_snapshot_model()  # what a workspace keeps: the versions as tags, the source as metadata
    assert stored.tags == ["model-v3", "model-v4"] and stored.metadata == {"source": "log"}
