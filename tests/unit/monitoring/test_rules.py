"""The monitoring rules, with no I/O: when to mail, when to retrain."""

from __future__ import annotations

from dataclasses import replace

import pytest

from heartrisk.drift import DriftResult
from heartrisk.monitoring.rules import Decision, decide
from tests.unit.monitoring.results import predictions_moved, result


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


@pytest.mark.parametrize("quiet", [True, False])
def test_prediction_drift_alone_always_mails_and_never_retrains(quiet: bool) -> None:
    moved = replace(result(0.2), prediction=predictions_moved(True))
    decision = decide(moved, has_recipients=True, retrain_on_drift=True, mail_when_quiet=quiet)
    assert decision == Decision("no drift", mail=True, retrain=False)
    steady = replace(result(0.2), prediction=predictions_moved(False))
    assert decide(steady, has_recipients=True, retrain_on_drift=True, mail_when_quiet=quiet).mail is quiet
    assert decide(moved, has_recipients=False, retrain_on_drift=True, mail_when_quiet=quiet).mail is False
