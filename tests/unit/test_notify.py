"""What the operator receives: verdict and columns in the drift mail, a note when data was too little,
and a message mail clients accept (Date, Message-ID, text and HTML alternatives, no empty headers)."""

from __future__ import annotations

import email
import email.policy
from dataclasses import replace

from heartrisk.drift import ColumnDrift, DriftResult, PredictionDrift
from heartrisk.notify import drift_message, not_enough_data_message
from heartrisk.notify import email as build_email
from heartrisk.summaries import DashboardEntry, MonitorSummary


def result(drifted: dict[str, float], threshold: float = 0.5) -> DriftResult:
    """A result over four columns, the named ones drifted with the given K-S p-values."""
    columns = tuple(
        ColumnDrift(name, "numeric", "K-S p_value", drifted.get(name, 0.6), 0.05, name in drifted)
        for name in ("age", "chol", "thalachh", "oldpeak")
    )
    return DriftResult(len(drifted) / 4, len(drifted), threshold, columns)


def summary(rows: int = 600, source: str = "prediction log", **extra) -> MonitorSummary:
    base = MonitorSummary(source, "ref.csv", rows, 303, 0.5, "drift", True, 0.5, [], report_path="/state/r.html")
    return replace(base, **extra)


def prediction(drifted: bool) -> PredictionDrift:
    probability = ColumnDrift("probability", "prediction", "K-S p_value", 1e-9 if drifted else 0.4, 0.05, drifted)
    label = ColumnDrift("label", "prediction", "Z-test p_value", 1e-4 if drifted else 0.5, 0.05, drifted)
    return PredictionDrift(probability, label, (0.61 if drifted else 0.41, 0.41), (0.65 if drifted else 0.3, 0.29))


def test_the_drift_mail_names_the_verdict_the_drifted_columns_and_the_report() -> None:
    message = drift_message(
        result({"chol": 0.001, "thalachh": 0.0002}, threshold=0.25),
        summary=summary(report_path="/state/reports/drift-1.html"),
        report_url="http://mlflow.example/#/runs/1?a=<b>",
        actions=["Retraining started: flow run brave-fox."],
    )
    assert message.subject == "HeartRisk: drift detected (50% of columns)"
    for text in (message.text, message.html):
        assert "Serum cholesterol (chol)" in text
        assert "Maximum heart rate achieved (thalachh)" in text
        assert "Age (age)" not in text
        assert "/state/reports/drift-1.html" in text
        assert "Retraining started: flow run brave-fox." in text
    assert "  - Serum cholesterol (chol): K-S p_value, score 0.001, threshold 0.05" in message.text
    assert "?a=&lt;b&gt;" in message.html and "<b>" not in message.html


def test_no_drift_says_so_in_the_subject() -> None:
    quiet = drift_message(result({}), summary=summary(), report_url="", actions=[])
    assert quiet.subject == "HeartRisk: no drift (0% of columns drifted, alert at 50%)"
    assert "No column drifted." in quiet.text and "No column drifted." in quiet.html


def test_prediction_drift_is_told_apart_from_input_drift_in_subject_and_body() -> None:
    drifted = summary(prediction_drift={**prediction(True).to_json(), "reference": "champion v3 on ref.csv"})
    both = drift_message(replace(result({"chol": 0.001, "age": 0.01}), prediction=prediction(True)), summary=drifted,
                         report_url="", actions=[])  # fmt: skip
    assert both.subject == "HeartRisk: drift detected (50% of columns), and in the predictions"
    alone = drift_message(replace(result({}), prediction=prediction(True)), summary=drifted, report_url="", actions=[])
    assert alone.subject == "HeartRisk: prediction drift (inputs: 0% of columns drifted, alert at 50%)"
    for text in (alone.text, alone.html):
        assert "the probability drifted (K-S p_value 1e-09, threshold 0.05)" in text
        assert "mean 0.610 against 0.410 on the reference, positive rate 65% against 29%" in text
        assert "Reference: champion v3 on ref.csv. It is not counted in the share of input columns." in text
    steady = summary(prediction_drift=prediction(False).to_json())
    quiet = drift_message(replace(result({}), prediction=prediction(False)), summary=steady, report_url="", actions=[])
    assert quiet.subject == "HeartRisk: no drift (0% of columns drifted, alert at 50%)"
    assert "the probability did not drift" in quiet.text
    unknown = summary(prediction_drift={"detected": None, "reason": "the current data has no served predictions"})
    csv = drift_message(result({}), summary=unknown, report_url="", actions=[])
    assert "prediction drift not computed: the current data has no served predictions" in csv.text


def test_a_sampled_window_its_model_versions_and_the_dashboard_link_are_in_the_mail() -> None:
    board = DashboardEntry("p1", "s1", "http://127.0.0.1:8001/projects/p1/reports/s1")
    sampled = summary(rows=10_000_000, sampled_rows=1_000_000, model_versions={"3": 9_000_000, "4": 1_000_000},
                      dashboard=board)  # fmt: skip
    message = drift_message(result({"chol": 0.001}), summary=sampled, report_url="http://mlflow/r", actions=[])
    for text in (message.text, message.html):
        assert "Current data: 10000000 rows from prediction log." in text
        assert "1000000 of them, drawn uniformly at random (HEARTRISK_DRIFT_MAX_ROWS), were compared" in text
        assert "Rows per model version in the window: v3: 9000000, v4: 1000000." in text
        assert "http://127.0.0.1:8001/projects/p1/reports/s1" in text
    assert "Dashboard of every run (Evidently UI): http://127.0.0.1:8001/projects/p1/reports/s1" in message.text
    whole = drift_message(result({"chol": 0.001}), summary=summary(), report_url="", actions=[])
    assert "drawn uniformly at random" not in whole.text and "Evidently UI" not in whole.text


def test_too_little_data_gets_its_own_short_message() -> None:
    message = not_enough_data_message(current_rows=12, minimum=30, source="prediction log, last 7 days")
    assert message.subject == "HeartRisk: not enough data (12 of 30 rows)"
    assert "12 rows and at least 30 are needed" in message.text
    assert "prediction log, last 7 days" in message.html


def test_no_line_is_longer_than_smtp_allows() -> None:
    many = [f"Action {n}: " + "x" * 200 for n in range(10)]
    message = drift_message(result({"chol": 0.001}), summary=summary(), report_url="http://r", actions=many)
    assert max(len(line) for line in (message.html + "\n" + message.text).splitlines()) <= 998


def test_the_mime_message_has_date_message_id_and_both_parts_and_no_empty_header() -> None:
    message = not_enough_data_message(current_rows=1, minimum=30, source="s")
    mail = build_email(message, sender="monitor@heartrisk.test", recipients=["a@x.test", "b@x.test"])
    parsed = email.message_from_bytes(mail.as_bytes(), policy=email.policy.default)
    assert parsed["To"] == "a@x.test, b@x.test"
    assert parsed["Date"].datetime is not None
    assert parsed["Message-ID"].endswith("@heartrisk.test>")
    assert all(str(value).strip() for value in parsed.values())
    assert "Cc" not in parsed
    assert parsed.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert parsed.get_body(("plain",)).get_content().strip() == message.text
