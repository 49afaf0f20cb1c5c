"""What the operator receives: verdict and columns in the drift mail, a note when data was too little,
and a message mail clients accept (Date, Message-ID, text and HTML alternatives, no empty headers)."""

from __future__ import annotations

import email
import email.policy

from heartrisk.drift import ColumnDrift, DriftResult
from heartrisk.notify import drift_message, not_enough_data_message
from heartrisk.notify import email as build_email


def result(drifted: dict[str, float], threshold: float = 0.5) -> DriftResult:
    """A result over four columns, the named ones drifted with the given K-S p-values."""
    columns = tuple(
        ColumnDrift(name, "numeric", "K-S p_value", drifted.get(name, 0.6), 0.05, name in drifted)
        for name in ("age", "chol", "thalachh", "oldpeak")
    )
    return DriftResult(len(drifted) / 4, len(drifted), threshold, columns)


def test_the_drift_mail_names_the_verdict_the_drifted_columns_and_the_report() -> None:
    message = drift_message(
        result({"chol": 0.001, "thalachh": 0.0002}, threshold=0.25),
        current_rows=600,
        source="prediction log",
        report_url="http://mlflow.example/#/runs/1?a=<b>",
        report_path="/state/reports/drift-1.html",
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
    quiet = drift_message(result({}), current_rows=600, source="x", report_url="", report_path="r.html", actions=[])
    assert quiet.subject == "HeartRisk: no drift (0% of columns drifted, alert at 50%)"
    assert "No column drifted." in quiet.text and "No column drifted." in quiet.html


def test_too_little_data_gets_its_own_short_message() -> None:
    message = not_enough_data_message(current_rows=12, minimum=30, source="prediction log, last 7 days")
    assert message.subject == "HeartRisk: not enough data (12 of 30 rows)"
    assert "12 rows and at least 30 are needed" in message.text
    assert "prediction log, last 7 days" in message.html


def test_no_line_is_longer_than_smtp_allows() -> None:
    many = [f"Action {n}: " + "x" * 200 for n in range(10)]
    message = drift_message(
        result({"chol": 0.001}), current_rows=1, source="s", report_url="http://r", report_path="p", actions=many
    )
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
