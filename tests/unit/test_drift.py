"""Drift computation on synthetic data: shifted columns drift, the rest do not, numbers match Evidently."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from evidently import Dataset, Report
from evidently.presets import DataDriftPreset

from heartrisk.cli import main
from heartrisk.data import DataError, validate_frame
from heartrisk.monitor import compute_drift, data_definition, read_schema_csv, shared_columns, validate_served
from heartrisk.notify import drift_message
from heartrisk.schema import BY_NAME, FEATURE_NAMES, FEATURES, OUTPUT
from tests.conftest import HEART

ROWS = 600


def synthetic(seed: int, rows: int = ROWS) -> pd.DataFrame:
    """Valid records drawn independently per column: uniform inside the range, codes at random."""
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    for feature in (*FEATURES, OUTPUT):
        if feature.codes is not None:
            columns[feature.name] = rng.choice(list(feature.codes), size=rows)
        else:
            low, high = feature.minimum, feature.maximum
            middle, spread = (low + high) / 2, (high - low) / 8
            values = np.clip(rng.normal(middle, spread, rows), low, high)
            columns[feature.name] = np.round(values) if feature.dtype == "int" else np.round(values, 1)
    return pd.DataFrame(columns)


def shifted(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The same rows shuffled (unchanged distributions) with two measurements moved by a clear amount."""
    moved = frame.sample(frac=1, random_state=seed).reset_index(drop=True)
    moved["chol"] = moved["chol"] + 120
    moved["thalachh"] = moved["thalachh"] - 40
    return moved


def evidently_direct(current: pd.DataFrame, reference: pd.DataFrame) -> dict:
    """Evidently's own preset on the same frames, read here independently of the monitor's parser."""
    definition = data_definition(list(current.columns))
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
    assert by_column["chol"].kind == "numeric"
    assert by_column["sex"].kind == "categorical"
    assert by_column["chol"].score < by_column["chol"].threshold < by_column["age"].score


def test_share_matches_evidentlys_own_numbers() -> None:
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
    assert all(c.kind == BY_NAME[c.column].kind for c in result.columns)


def test_csv_with_label_keeps_it_and_a_bad_value_names_column_and_row(tmp_path) -> None:
    good = tmp_path / "good.csv"
    synthetic(9, rows=5).to_csv(good, index=False)
    assert OUTPUT.name in read_schema_csv(good).columns
    unlabeled = tmp_path / "unlabeled.csv"
    synthetic(9, rows=5)[list(FEATURE_NAMES)].to_csv(unlabeled, index=False)
    assert list(read_schema_csv(unlabeled).columns) == list(FEATURE_NAMES)
    bad = synthetic(9, rows=5)
    bad.loc[3, "chol"] = 5000
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"column 'chol', row 4"):
        read_schema_csv(path)


def test_the_email_names_the_verdict_the_drifted_columns_and_the_report() -> None:
    reference = synthetic(10)
    result, _ = compute_drift(shifted(reference, seed=11), reference, threshold=0.1)
    message = drift_message(
        result,
        current_rows=600,
        source="prediction log",
        report_url="http://mlflow.example/#/runs/1?a=<b>",
        report_path="/state/reports/drift-1.html",
        actions=["Retraining started: flow run brave-fox."],
    )
    assert message.subject == "HeartRisk: drift detected (14% of columns)"
    for text in (message.text, message.html):
        assert "Serum cholesterol (chol)" in text
        assert "Maximum heart rate achieved (thalachh)" in text
        assert "Age (age)" not in text
        assert "/state/reports/drift-1.html" in text
        assert "Retraining started: flow run brave-fox." in text
    assert "?a=&lt;b&gt;" in message.html
    calm = compute_drift(reference.sample(frac=1, random_state=12), reference, threshold=0.5)[0]
    quiet = drift_message(calm, current_rows=600, source="x", report_url="", report_path="r.html", actions=[])
    assert quiet.subject == "HeartRisk: no drift (0% of columns drifted, alert at 50%)"
    assert "No column drifted." in quiet.text


def test_cli_refuses_a_username_without_password_and_a_bad_threshold(monkeypatch, capsys) -> None:
    monkeypatch.delenv("HEARTRISK_SMTP_PASSWORD", raising=False)
    args = ["create-email-block", "--server", "smtp.gmail.com", "--port", "465", "--security", "ssl"]
    assert main([*args, "--username", "me@gmail.com"]) == 2
    assert "HEARTRISK_SMTP_PASSWORD" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["monitor", "--threshold", "1.5"])
    assert exit_info.value.code == 2
    assert "between 0 (excluded) and 1" in capsys.readouterr().err


def test_no_email_line_is_longer_than_smtp_allows() -> None:
    reference = synthetic(13)
    result, _ = compute_drift(shifted(reference, seed=14), reference, threshold=0.1)
    many = [f"Action {n}: " + "x" * 200 for n in range(10)]
    message = drift_message(result, current_rows=1, source="s", report_url="http://r", report_path="p", actions=many)
    assert max(len(line) for line in (message.html + "\n" + message.text).splitlines()) <= 998


def test_monitor_refuses_a_malformed_csv_naming_column_and_row(tmp_path, capsys) -> None:
    lines = HEART.read_text().splitlines()
    header = lines[0].split(",")
    row = lines[3].split(",")
    row[header.index("chol")] = "lots"
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([*lines[:3], ",".join(row), *lines[4:40]]) + "\n")
    assert main(["monitor", "--current", str(bad), "--no-retrain"]) == 2
    assert "column 'chol', row 3 (line 4): value 'lots' is not a number" in capsys.readouterr().err


def test_served_rows_are_checked_on_distinct_values_but_errors_name_the_real_row() -> None:
    served = synthetic(15, rows=400)[list(FEATURE_NAMES)].astype(float)  # as read back from the log
    typed = validate_served(served, "log")
    pd.testing.assert_frame_equal(typed, validate_frame(served, require_target=False, source="log"))
    served.loc[357, "thall"] = 7.0
    with pytest.raises(DataError, match=r"log: column 'thall', row 358 \(line 359\): value 7 is not a valid"):
        validate_served(served, "log")
