"""Monitoring: a Prefect flow that compares served data with the reference data and acts on the result.

Stages, each a task in the Prefect UI: read (the prediction log over a time window, or a CSV; the
reference), drift (Evidently, in :mod:`heartrisk.drift`), report (HTML file, MLflow run, Prefect table),
act (start retraining when :func:`decide` says so) and notify (the e-mail says what was done). The
report is written before anything that can fail, so a failure loses nothing.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from evidently.core.report import Snapshot
from mlflow.tracking import MlflowClient
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import SyncClientContext

from heartrisk import names, notify, tracking
from heartrisk.config import Settings, get_settings
from heartrisk.data import read_schema_csv, validate_served
from heartrisk.drift import DriftResult, compute_drift
from heartrisk.predlog import open_log
from heartrisk.schema import BY_NAME
from heartrisk.summaries import MonitorSummary

STEP = {"cache_policy": NO_CACHE}


@dataclass(frozen=True)
class Decision:
    """What a monitoring run does about its result: mail the operator, start retraining."""

    status: str
    mail: bool
    retrain: bool


def decide(
    result: DriftResult | None, *, has_recipients: bool, retrain_on_drift: bool, mail_when_quiet: bool
) -> Decision:
    """The alert and retraining rules, with no I/O (``result`` is None when there were too few rows).

    Drift (the share of drifted columns reaches the threshold, never one column alone) always mails
    and retrains when retraining is on; a run without drift, or with too little data, mails only when
    ``mail_when_quiet`` (so the operator can tell a quiet week from a broken monitor).
    """
    if result is None:
        return Decision("not enough data", mail=has_recipients and mail_when_quiet, retrain=False)
    if result.drift_detected:
        return Decision("drift", mail=has_recipients, retrain=retrain_on_drift)
    return Decision("no drift", mail=has_recipients and mail_when_quiet, retrain=False)


@task(name="read-current-data", **STEP)
def read_current(current: str | None, predictions_db: str, window_days: float) -> tuple[pd.DataFrame, str]:
    """The data to watch: a given CSV, or what the app served in the last ``window_days``."""
    if current:
        return read_schema_csv(current), current
    log = open_log(predictions_db)
    try:
        served = log.features(days=window_days)
    finally:
        log.close()
    source = f"prediction log {log.where}, last {window_days:g} days"
    return validate_served(served, source), source


@task(name="read-reference-data", **STEP)
def read_reference(reference: str) -> pd.DataFrame:
    return read_schema_csv(reference)


@task(name="compute-drift", **STEP)
def drift_step(current: pd.DataFrame, reference: pd.DataFrame, threshold: float) -> tuple[DriftResult, Snapshot]:
    return compute_drift(current, reference, threshold)


@task(name="save-report", **STEP)
def save_report(snapshot: Snapshot, report_dir: Path, stamp: str) -> Path:
    """Timestamped report plus a stable ``latest.html`` (replaced atomically) for links."""
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / f"drift-{stamp}.html"
    snapshot.save_html(str(path))  # Evidently writes nothing when given a Path object
    partial = report_dir / ".latest.html.tmp"
    shutil.copyfile(path, partial)
    partial.replace(report_dir / "latest.html")
    return path


@task(name="log-monitoring-run", **STEP)
def log_to_mlflow(settings: Settings, result: DriftResult, report: Path, summary: MonitorSummary) -> dict[str, str]:
    """One MLflow run per monitoring run, so the MLflow UI charts drift over time."""
    client = MlflowClient(settings.mlflow_tracking_uri)
    tags = {"drift_detected": str(result.drift_detected).lower()}
    run_id = tracking.start_run(
        client, settings.monitor_experiment, f"drift-{report.stem.removeprefix('drift-')}", tags
    )
    values = {"drift_share": result.share, "drifted_columns": result.drifted_count}
    values |= {"current_rows": summary.current_rows, "reference_rows": summary.reference_rows}
    for column in result.columns:
        values |= {f"drift_score_{column.column}": column.score, f"drifted_{column.column}": int(column.drifted)}
    params = {k: getattr(summary, k) for k in ("current_source", "reference", "current_rows", "reference_rows")}
    try:
        tracking.log_batch(client, run_id, metrics=values, params={**params, "threshold": summary.threshold})
        client.log_artifact(run_id, str(report), "drift_report")
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id)
    experiment_id = client.get_run(run_id).info.experiment_id
    return {"run_id": run_id, "run_url": settings.mlflow_run_url(experiment_id, run_id)}


@task(name="publish-drift-table", **STEP)
def publish_table(result: DriftResult, report_url: str) -> None:
    table = [{**asdict(c), "label": BY_NAME[c.column].label} for c in result.columns]
    verdict = "drift detected" if result.drift_detected else "no drift"
    link = f" [Evidently report]({report_url})" if report_url else ""
    create_table_artifact(
        table=table,
        key=names.DRIFT_TABLE_ARTIFACT,
        description=f"{verdict}: {result.drifted_count}/{len(result.columns)} columns ({result.share:.0%}), "
        f"threshold {result.threshold:.0%}.{link}",
    )


@task(name="start-retraining", **STEP)
def start_retraining(deployment: str) -> dict[str, str]:
    """Start the training deployment and return at once; its promotion gate decides what serves."""
    from prefect.deployments import run_deployment

    run = run_deployment(deployment, timeout=0, tags=["drift-retraining"])
    return {"deployment": deployment, "flow_run_id": str(run.id), "flow_run_name": run.name}


async def _attempt(step: Callable[..., Any], *args: Any) -> tuple[Any, str]:
    """Run a task that must not stop the alert; returns (result, error message or "")."""
    state = step(*args, return_state=True)
    if state.is_completed():
        return await state.aresult(), ""
    return None, str(state.message or state.name)


async def _report(settings: Settings, result: DriftResult, snapshot: Snapshot, summary: MonitorSummary):
    """Keep the report (file, MLflow, Prefect table); returns the summary with its links, and any MLflow error."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    report = save_report(snapshot, settings.report_dir, stamp)
    tracked, mlflow_error = await _attempt(log_to_mlflow, settings, result, report, summary)
    publish_table(result, (tracked or {}).get("run_url", ""))
    summary = replace(
        summary,
        columns=[asdict(c) for c in result.columns],
        report_path=str(report),
        latest_report=str(report.parent / "latest.html"),
        mlflow=tracked or {"error": mlflow_error},
    )
    return summary, mlflow_error


async def _act(decision: Decision, result: DriftResult | None, deployment: str) -> tuple[dict | None, list[str], str]:
    """Start retraining when decided; returns (the run, what the e-mail should say, the error if any)."""
    if decision.retrain:
        started, error = await _attempt(start_retraining, deployment)
        if started:
            line = f"Retraining started: flow run {started['flow_run_name']} of {deployment}; "
            return started, [line + "its promotion gate decides whether the new model serves."], ""
        return {"error": error}, [f"Retraining could NOT be started ({deployment}): {error}"], error
    if result is not None and result.drift_detected:
        return None, ["Retraining is switched off (--no-retrain or HEARTRISK_RETRAIN_ON_DRIFT=false)."], ""
    return None, [], ""


def _message(summary: MonitorSummary, result: DriftResult | None, actions: list[str], minimum: int) -> notify.Message:
    if result is None:
        return notify.not_enough_data_message(
            current_rows=summary.current_rows, minimum=minimum, source=summary.current_source
        )
    report_url = (summary.mlflow or {}).get("run_url", "")
    return notify.drift_message(
        result,
        current_rows=summary.current_rows,
        source=summary.current_source,
        report_url=report_url,
        report_path=summary.report_path or "",
        actions=actions,
    )


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
    logger = get_run_logger()
    threshold = settings.drift_threshold if threshold is None else threshold
    recipients = list(recipients or settings.email_recipients)
    with SyncClientContext.get_or_create():  # one Prefect client for all the steps (about 40 ms each otherwise)
        reference_path = str(reference or settings.reference_path)
        window = settings.drift_window_days if window_days is None else window_days
        current_frame, source = read_current(current, settings.predictions_db, window)
        reference_frame = read_reference(reference_path)
        summary = MonitorSummary(
            source, reference_path, len(current_frame), len(reference_frame), threshold, "", False, None, []
        )
        result, mlflow_error = None, ""
        if len(current_frame) >= settings.drift_min_rows:
            result, snapshot = drift_step(current_frame, reference_frame, threshold)
            summary, mlflow_error = await _report(settings, result, snapshot, summary)
        decision = decide(
            result,
            has_recipients=bool(recipients),
            retrain_on_drift=settings.retrain_on_drift if retrain is None else retrain,
            mail_when_quiet=settings.mail_when_quiet,
        )
        summary = _verdict(summary, result, decision)
        logger.info(_log_line(summary, settings.drift_min_rows))
        retraining, actions, retrain_error = await _act(decision, result, settings.train_deployment)
        if mlflow_error:
            actions.append(f"The run could not be logged to MLflow: {mlflow_error}")
        summary = replace(summary, retraining=retraining, email={"sent": False, "recipients": []})
        if decision.mail:
            message = _message(summary, result, actions, settings.drift_min_rows)
            sent = await notify.send(
                message,
                block=email_block or settings.email_block,
                sender=settings.email_from,
                recipients=recipients,
                retries=settings.smtp_retries,
                retry_delay=settings.smtp_retry_delay,
            )
            summary = replace(summary, email=sent)
        elif not recipients:
            logger.warning("No recipients (--recipient or HEARTRISK_EMAIL_TO): no e-mail sent.")
    failures = [f"MLflow logging failed: {mlflow_error}"] if mlflow_error else []
    failures += [f"retraining could not be started: {retrain_error}"] if retrain_error else []
    if failures:
        raise RuntimeError("; ".join(failures))
    return summary


def _verdict(summary: MonitorSummary, result: DriftResult | None, decision: Decision) -> MonitorSummary:
    if result is None:
        return replace(summary, status=decision.status)
    return replace(
        summary,
        status=decision.status,
        drift_detected=result.drift_detected,
        share=result.share,
        drifted_columns=result.drifted_columns,
    )


def _log_line(summary: MonitorSummary, minimum: int) -> str:
    if summary.share is None:
        return f"Not enough data: {summary.current_rows} current rows, at least {minimum} needed; no drift computed."
    return (
        f"{summary.status}: {len(summary.drifted_columns)}/{len(summary.columns)} columns drifted "
        f"({summary.share:.0%}, threshold {summary.threshold:.0%}): {', '.join(summary.drifted_columns) or 'none'}"
    )
