"""The monitoring flow: read, compare, keep the report, decide, act, mail; each step a task in the Prefect UI.
Last, it checks that the daily purge still succeeds (:mod:`heartrisk.monitoring.overdue`), and a run that
succeeded pushes its verdict and the time to Prometheus's Pushgateway (:mod:`heartrisk.pushed`).

The report is kept before anything that can fail, so a failure loses nothing; a destination that could
not be reached, or a retraining that could not start, is said in the e-mail and then fails the run.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from typing import TYPE_CHECKING

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import SyncClientContext

from heartrisk import names, notify, pushed
from heartrisk.config import get_settings
from heartrisk.drift import DriftResult
from heartrisk.monitoring import overdue, report
from heartrisk.monitoring.current import Current, read_current
from heartrisk.monitoring.reference import read_reference
from heartrisk.monitoring.report import Compared, Kept
from heartrisk.monitoring.rules import Decision, decide
from heartrisk.settings import Settings
from heartrisk.summaries import Failed, MonitorSummary, Retraining

if TYPE_CHECKING:
    from evidently.core.report import Snapshot


# Async on purpose: Prefect's sync engine joins its heartbeat thread at the end of every run, and the
# thread sleeps in 1-second steps, so a sync flow waits up to a second for nothing. The steps stay sync.
@flow(name=names.MONITOR_FLOW)
async def monitor_flow(
    current: str | None = None,
    reference: str | None = None,
    recipients: list[str] | None = None,
    email_block: str | None = None,
    threshold: float | None = None,
    retrain: bool | None = None,
    window_days: float | None = None,
) -> MonitorSummary:
    """Compare current data with the reference; report, alert and (on drift) retrain."""
    settings = get_settings()
    recipients = list(recipients or settings.mail.recipients)
    retrain = settings.drift.retrain if retrain is None else retrain
    threshold = settings.drift.threshold if threshold is None else threshold
    window_days = settings.drift.window_days if window_days is None else window_days
    # One Prefect client for all the steps (about 40 ms each otherwise).
    with long_lived_frozen(), SyncClientContext.get_or_create():
        reference_path = str(reference or settings.reference_path)
        # Side by side: the reference's scores need the registry (HTTP), the window the database.
        scoring = read_reference.submit(reference_path, settings, current is None)
        data = read_current(current, settings, window_days)
        scored, note = scoring.result()
        compared = Compared(data, reference_path, len(scored), threshold)
        result, snapshot = compare(compared, scored, settings.drift.min_rows)
        kept = await report.keep(settings, result, snapshot, compared) if result is not None else None
        decision = decide(result, has_recipients=bool(recipients), retrain_on_drift=retrain,
                          mail_when_quiet=settings.mail.when_quiet)  # fmt: skip
        get_run_logger().info(log_line(compared, result, decision, settings.drift.min_rows))
        retraining = await start_retraining_if(decision, settings.prefect.train_deployment)
        summary = summarize(compared, result, decision, kept, retraining, _prediction_drift(result, note, compared))
        email = await mail(settings, summary, result, decision, recipients, email_block)
        purge = await report.attempt(overdue.purge_record)  # the daily purge: has it succeeded lately?
        await overdue.mail_if_overdue(purge, settings.mail, recipients, email_block)
    failures = [f"{where} logging failed: {error}" for where, error in summary.problems.items()]
    if isinstance(retraining, Failed):
        failures.append(f"retraining could not be started: {retraining.reason}")
    if isinstance(purge, Failed):
        failures.append(f"the purge's record could not be read from Prefect: {purge.reason}")
    if failures:
        raise RuntimeError("; ".join(failures))
    if problem := pushed.push(settings.pushgateway_url, pushed.MONITORING, pushed.monitoring(summary)):
        get_run_logger().warning(problem)
    return replace(summary, email=email)


def compare(compared: Compared, reference: pd.DataFrame, minimum: int) -> tuple[DriftResult | None, Snapshot | None]:
    """The drift result and Evidently's snapshot; (None, None) with fewer than ``minimum`` current rows."""
    if len(compared.current.frame) < minimum:
        return None, None
    return drift_step(compared.current, reference, compared.threshold)


@task(name="compute-drift", cache_policy=NO_CACHE)
def drift_step(current: Current, reference: pd.DataFrame, threshold: float) -> tuple[DriftResult, Snapshot]:
    metadata = {"source": current.source, "window_rows": str(current.rows)}
    if current.sampled_rows is not None:
        metadata["sampled_rows"] = str(current.sampled_rows)
    from heartrisk.evidently_report import compute_drift  # Evidently (6 s of CPU) only for a run that compares

    return compute_drift(current.frame, reference, threshold, current.versions, metadata)


@task(name="start-retraining", cache_policy=NO_CACHE)
def start_retraining(deployment: str) -> Retraining:
    """Start the training deployment and return at once; its promotion gate decides what serves."""
    from prefect.deployments import run_deployment

    run = run_deployment(deployment, timeout=0, tags=["drift-retraining"])
    return Retraining(deployment, str(run.id), run.name)


async def start_retraining_if(decision: Decision, deployment: str) -> Retraining | Failed | None:
    return await report.attempt(start_retraining, deployment) if decision.retrain else None


def summarize(
    compared: Compared,
    result: DriftResult | None,
    decision: Decision,
    kept: Kept | None,
    retraining: Retraining | Failed | None,
    prediction_drift: dict,
) -> MonitorSummary:
    """The run's summary, built once from what each step returned (the e-mail's outcome is added last)."""
    current = compared.current
    facts = {"current_source": current.source, "reference": compared.reference, "current_rows": current.rows,
             "reference_rows": compared.reference_rows, "threshold": compared.threshold, "status": decision.status,
             "sampled_rows": current.sampled_rows, "model_versions": current.versions}  # fmt: skip
    if result is None:
        return MonitorSummary(**facts, drift_detected=False, share=None, drifted_columns=[])
    assert kept is not None
    return MonitorSummary(
        **facts,
        drift_detected=result.drift_detected,
        share=result.share,
        drifted_columns=result.drifted_columns,
        columns=[asdict(c) for c in result.columns],
        report_path=str(kept.report),
        latest_report=str(kept.report.parent / "latest.html"),
        mlflow=kept.mlflow,
        retraining=retraining,
        prediction_drift=prediction_drift,
        dashboard=kept.dashboard,
    )


def _prediction_drift(result: DriftResult | None, note: str, compared: Compared) -> dict:
    if result is None or result.prediction is None:
        return {"detected": None, "score": None, "method": None, "reason": note}
    return {**result.prediction.to_json(), "reference": f"{note} on {compared.reference}"}


def actions(summary: MonitorSummary, result: DriftResult | None, deployment: str) -> list[str]:
    """What the e-mail says was done: retraining started (or why not), and what could not be logged."""
    lines = []
    if isinstance(retraining := summary.retraining, Retraining):
        lines.append(f"Retraining started: flow run {retraining.flow_run_name} of {retraining.deployment}; "
                     "its promotion gate decides whether the new model serves.")  # fmt: skip
    elif isinstance(retraining, Failed):
        lines.append(f"Retraining could NOT be started ({deployment}): {retraining.reason}")
    elif result is not None and result.drift_detected:
        lines.append("Retraining is switched off (--no-retrain or HEARTRISK_RETRAIN_ON_DRIFT=false).")
    return lines + [f"The run could not be logged to {where}: {error}" for where, error in summary.problems.items()]


async def mail(
    settings: Settings,
    summary: MonitorSummary,
    result: DriftResult | None,
    decision: Decision,
    recipients: list[str],
    block: str | None,
) -> dict:
    """Send the e-mail when decided; what was sent (the summary's ``email``)."""
    if not decision.mail:
        if not recipients:
            get_run_logger().warning("No recipients (--recipient or HEARTRISK_EMAIL_TO): no e-mail sent.")
        return {"sent": False, "recipients": []}
    return await notify.send(
        message(summary, result, settings.drift.min_rows, settings.prefect.train_deployment),
        settings.mail,
        recipients=recipients,
        block=block,
    )


def message(summary: MonitorSummary, result: DriftResult | None, minimum: int, deployment: str) -> notify.Message:
    """The e-mail: the drift report's message, or the one that says there were too few rows."""
    if result is None:
        return notify.not_enough_data_message(
            current_rows=summary.current_rows, minimum=minimum, source=summary.current_source
        )
    return notify.drift_message(
        result, summary=summary, report_url=summary.run_url, actions=actions(summary, result, deployment)
    )


def log_line(compared: Compared, result: DriftResult | None, decision: Decision, minimum: int) -> str:
    if result is None:
        rows = compared.current.rows
        return f"Not enough data: {rows} current rows, at least {minimum} needed; no drift computed."
    moved = result.prediction is not None and result.prediction.detected
    return (
        f"{decision.status}: {result.drifted_count}/{len(result.columns)} columns drifted "
        f"({result.share:.0%}, threshold {compared.threshold:.0%}): {', '.join(result.drifted_columns) or 'none'}"
        + ("; the model's output drifted" if moved else "")
    )


@contextmanager
def long_lived_frozen() -> Iterator[None]:
    """Keep the garbage collector's full passes off the objects that exist when the flow starts, until it ends.

    They are the process's long-lived part (modules, Prefect, MLflow, Evidently: about half a million
    objects), none of them garbage of this run, and a full collection walks every one: 0.3 s or more
    each, and at 100k rows Evidently allocates enough to set one off in the middle of the comparison
    (measured: 0.06 s for the same pass with them frozen). What the run allocates is collected as usual.
    This is what ``gc.freeze`` is for; a caller that froze the heap itself keeps its freeze.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
