"""The monitoring rules, without Prefect: when to mail, when to retrain, and what the mail says."""

from __future__ import annotations

import asyncio

import pytest

from heartrisk.drift import ColumnDrift, DriftResult
from heartrisk.monitor import Decision, _act, _message, decide
from heartrisk.summaries import MonitorSummary


def result(share: float, threshold: float = 0.5) -> DriftResult:
    column = ColumnDrift("age", "numeric", "K-S p_value", 0.001 if share else 0.6, 0.05, bool(share))
    return DriftResult(share, int(share > 0), threshold, (column,))


@pytest.mark.parametrize(
    ("drift", "recipients", "retrain", "quiet", "expected"),
    [
        (result(0.6), True, True, True, Decision("drift", mail=True, retrain=True)),
        (result(0.6), True, False, False, Decision("drift", mail=True, retrain=False)),
        (result(0.6), False, True, True, Decision("drift", mail=False, retrain=True)),
        (
            result(0.5, threshold=0.5),
            True,
            True,
            False,
            Decision("drift", mail=True, retrain=True),
        ),  # share = threshold
        (result(0.49), True, True, True, Decision("no drift", mail=True, retrain=False)),  # one column is not drift
        (result(0.2), True, True, False, Decision("no drift", mail=False, retrain=False)),
        (None, True, True, True, Decision("not enough data", mail=True, retrain=False)),
        (None, True, True, False, Decision("not enough data", mail=False, retrain=False)),
        (None, False, True, True, Decision("not enough data", mail=False, retrain=False)),
    ],
)
def test_decide(drift: DriftResult | None, recipients: bool, retrain: bool, quiet: bool, expected: Decision) -> None:
    assert decide(drift, has_recipients=recipients, retrain_on_drift=retrain, mail_when_quiet=quiet) == expected


def test_drift_with_retraining_off_says_so_and_starts_nothing() -> None:
    run, actions, error = asyncio.run(_act(Decision("drift", True, False), result(0.6), "flow/deployment"))
    assert run is None and error == ""
    assert actions == ["Retraining is switched off (--no-retrain or HEARTRISK_RETRAIN_ON_DRIFT=false)."]
    assert asyncio.run(_act(Decision("no drift", True, False), result(0.1), "flow/deployment")) == (None, [], "")


def test_the_message_follows_the_outcome() -> None:
    summary = MonitorSummary("log", "ref.csv", 12, 303, 0.5, "not enough data", False, None, [])
    assert _message(summary, None, [], 30).subject == "HeartRisk: not enough data (12 of 30 rows)"
    drifted = MonitorSummary("log", "ref.csv", 300, 303, 0.5, "drift", True, 0.6, ["age"], report_path="r.html")
    assert _message(drifted, result(0.6), ["did X"], 30).subject == "HeartRisk: drift detected (60% of columns)"
