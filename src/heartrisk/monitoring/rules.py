"""The alert and retraining rules: what a monitoring run does about its result, with no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from heartrisk.drift import DriftResult


@dataclass(frozen=True)
class Decision:
    """What a monitoring run does about its result: mail the operator, start retraining."""

    status: str
    mail: bool
    retrain: bool


def decide(
    result: DriftResult | None, *, has_recipients: bool, retrain_on_drift: bool, mail_when_quiet: bool
) -> Decision:
    """The rules (``result`` is None when there were too few rows).

    Drift (the share of drifted columns reaches the threshold, never one column alone) always mails
    and retrains when retraining is on; prediction drift alone always mails and retrains nothing
    (the inputs did not move enough to say what new data would teach); a run without either, or
    with too little data, mails only when ``mail_when_quiet`` (so the operator can tell a quiet week
    from a broken monitor).
    """
    if result is None:
        return Decision("not enough data", mail=has_recipients and mail_when_quiet, retrain=False)
    if result.drift_detected:
        return Decision("drift", mail=has_recipients, retrain=retrain_on_drift)
    predictions_moved = result.prediction is not None and result.prediction.detected
    return Decision("no drift", mail=has_recipients and (mail_when_quiet or predictions_moved), retrain=False)
