"""Monitoring: a Prefect flow that compares served data with the reference data and acts on the result.

Stages, each a task in the Prefect UI: read (the prediction log over a time window, sampled in the
database when larger than ``HEARTRISK_DRIFT_MAX_ROWS``, or a CSV; the reference, with the champion's
probabilities on it), drift (Evidently, in :mod:`heartrisk.drift`: the inputs, and the model's output on
its own), report (HTML file, the Evidently workspace's dashboard of every run, MLflow run, Prefect
table), act (start retraining when :func:`decide` says so) and notify (the e-mail says what was done).
The report is written before anything that can fail, so a failure loses nothing.
"""

from __future__ import annotations

import gc
import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from mlflow.tracking import MlflowClient
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.context import SyncClientContext
from prefect.futures import PrefectFuture

from heartrisk import names, notify, tracking
from heartrisk.config import Settings, get_settings
from heartrisk.data import read_schema_csv, sha256, validate_served
from heartrisk.drift import LABEL, PROBABILITY, DriftResult
from heartrisk.predlog import open_log
from heartrisk.registry import Registry
from heartrisk.runlog import in_run_log
from heartrisk.schema import BY_NAME, FEATURE_NAMES
from heartrisk.summaries import MonitorSummary

if TYPE_CHECKING:
    from evidently.core.report import Snapshot

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


@dataclass(frozen=True)
class Current:
    """The data to watch, where it came from, and what its window held (a CSV is a window of its own rows)."""

    frame: pd.DataFrame  # the schema's columns; probability and label too when they were served
    source: str
    rows: int  # rows in the window
    versions: dict[str, int] = field(default_factory=dict)  # rows per model version in the window

    @property
    def sampled_rows(self) -> int | None:
        """Rows compared when the window was sampled, else None."""
        return len(self.frame) if len(self.frame) < self.rows else None


@task(name="read-current-data", **STEP)
def read_current(current: str | None, settings: Settings, window_days: float) -> Current:
    """The data to watch: a given CSV, or what the app served in the last ``window_days`` (sampled in the
    database when the window holds more than ``HEARTRISK_DRIFT_MAX_ROWS`` rows)."""
    if current:
        frame = read_schema_csv(current)
        return Current(frame, current, len(frame))
    log = open_log(settings.predictions_db)
    try:
        copy = settings.window_copy_dir if settings.drift_window_copy else None
        with in_run_log("heartrisk.predlog"):  # a window copy that cannot be used says so in the run's log
            window = log.window(days=window_days, max_rows=settings.drift_max_rows, seed=settings.drift_seed, copy=copy)
    finally:
        log.close()
    source = f"prediction log {log.where}, last {window_days:g} days"
    frame = validate_served(window.frame, source)
    frame[PROBABILITY], frame[LABEL] = window.frame[PROBABILITY], window.frame[LABEL].astype("int64")
    return Current(frame, source, window.rows, window.versions)


@task(name="read-reference-data", **STEP)
def read_reference(reference: str, settings: Settings, predictions: bool) -> tuple[pd.DataFrame, str]:
    """The reference data; when the current data comes from the prediction log (``predictions``), with the
    champion's probability and label on each row, what prediction drift compares the served ones with.
    Returns the frame and a note: the champion's version, or why the reference has no predictions (a CSV
    as current data, no champion, MLflow unreachable)."""
    frame = read_schema_csv(reference)
    if not predictions:
        return frame, "the current data has no served predictions (a CSV)"
    try:
        scores, version = champion_scores(settings, Path(reference), frame)
    except Exception as exc:  # prediction drift is one result among others: its absence must not stop the run
        return frame, f"the champion could not score the reference data: {str(exc).strip() or type(exc).__name__}"
    return frame.assign(**{PROBABILITY: scores[PROBABILITY], LABEL: scores[LABEL]}), f"champion v{version}"


def champion_scores(settings: Settings, path: Path, frame: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The champion's probability and label for each reference row, as the app computes them.

    Kept in ``<state>/reference-scores`` per champion and reference file, so a run loads the model only
    after a promotion (loading it costs about a second; a cached file, milliseconds). The serving code
    (Flask and the rest, about 0.5 s of imports) is imported only then too.
    """
    registry = Registry.of(settings)
    champion = registry.champion()
    if champion is None:
        raise LookupError(f"no champion yet ({settings.model_name}@{settings.champion_alias})")
    identity = [settings.mlflow_tracking_uri, registry.name, champion.version, champion.fingerprint, sha256(path)]
    key = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]
    cache = settings.state_dir / "reference-scores" / f"{registry.name}-v{champion.version}-{key}.csv"
    if cache.is_file():
        return pd.read_csv(cache), champion.version
    from heartrisk.serving.model_holder import LoadedModel

    model = LoadedModel.of(registry.name, champion.version, registry.load_sklearn(champion.version))
    probability, label = model.predict(frame[list(FEATURE_NAMES)].to_numpy(dtype=float))
    scores = pd.DataFrame({PROBABILITY: probability, LABEL: label})
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(".tmp")
    scores.to_csv(partial, index=False)
    partial.replace(cache)
    return scores, champion.version


@task(name="compute-drift", **STEP)
def drift_step(current: Current, reference: pd.DataFrame, threshold: float) -> tuple[DriftResult, Snapshot]:
    metadata = {"source": current.source, "window_rows": str(current.rows)}
    if current.sampled_rows is not None:
        metadata["sampled_rows"] = str(current.sampled_rows)
    from heartrisk.evidently_report import compute_drift  # Evidently (6 s of CPU) only for a run that compares

    return compute_drift(current.frame, reference, threshold, current.versions, metadata)


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


@task(name="add-to-dashboard", **STEP)
def add_to_dashboard(settings: Settings, snapshot: Snapshot, name: str) -> dict[str, str]:
    """The run's snapshot in the Evidently workspace's project, whose dashboard charts every run."""
    from heartrisk import dashboard  # Evidently's workspace code, only for a run that compared data

    return dashboard.add_run(settings, snapshot, name)


def _metrics(result: DriftResult, summary: MonitorSummary) -> dict[str, float]:
    """What the MLflow run charts: the verdicts, the rows, and the prediction drift."""
    values = {"drift_share": result.share, "drifted_columns": result.drifted_count}
    values |= {"current_rows": summary.current_rows, "reference_rows": summary.reference_rows}
    if summary.sampled_rows is not None:
        values["sampled_rows"] = summary.sampled_rows
    values |= {f"rows_model_v{version}": rows for version, rows in summary.model_versions.items()}
    for column in result.columns:
        values |= {f"drift_score_{column.column}": column.score, f"drifted_{column.column}": int(column.drifted)}
    if (prediction := result.prediction) is not None:
        values |= {"prediction_drift_score": prediction.probability.score}
        values |= {"prediction_drifted": int(prediction.detected)}
        values |= {"mean_probability": prediction.mean_probability[0], "positive_rate": prediction.positive_rate[0]}
    return values


@task(name="log-monitoring-run", **STEP)
def log_to_mlflow(settings: Settings, result: DriftResult, summary: MonitorSummary, stamp: str) -> str:
    """One MLflow run per monitoring run, so the MLflow UI charts drift over time: opened with its metrics
    while the report is written (it waits mostly on the server); returns its id."""
    client = MlflowClient(settings.mlflow_tracking_uri)
    tags = {"drift_detected": str(result.drift_detected).lower()}
    run_id = tracking.start_run(client, settings.monitor_experiment, f"drift-{stamp}", tags)
    params = {k: getattr(summary, k) for k in ("current_source", "reference", "current_rows", "reference_rows")}
    try:
        metrics = _metrics(result, summary)
        tracking.log_batch(client, run_id, metrics=metrics, params={**params, "threshold": summary.threshold})
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    return run_id


@task(name="attach-report-to-mlflow-run", **STEP)
def attach_report(settings: Settings, run_id: str, report: Path | None) -> dict[str, str]:
    """The HTML report as the MLflow run's artifact, and the run closed (FAILED without a report)."""
    client = MlflowClient(settings.mlflow_tracking_uri)
    if report is None:
        client.set_terminated(run_id, "FAILED")
        raise RuntimeError("the HTML report could not be written")
    try:
        client.log_artifact(run_id, str(report), "drift_report")
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id)
    experiment_id = client.get_run(run_id).info.experiment_id
    return {"run_id": run_id, "run_url": settings.mlflow_run_url(experiment_id, run_id)}


@task(name="publish-drift-table", **STEP)
def publish_table(result: DriftResult, links: dict[str, str]) -> None:
    """The per-column table on the flow run's page; the predictions last, marked as not counted."""
    table = [{**asdict(c), "label": BY_NAME[c.column].label} for c in result.columns]
    if (prediction := result.prediction) is not None:
        what = "Predicted probability of coronary artery disease (not counted in the share)"
        table += [{**asdict(prediction.probability), "label": what}]
        table += [{**asdict(prediction.label), "label": "Predicted label (not counted in the share)"}]
    verdict = "drift detected" if result.drift_detected else "no drift"
    if prediction is not None and prediction.detected:
        verdict += "; prediction drift"
    link = "".join(f" [{name}]({url})" for name, url in links.items() if url)
    create_table_artifact(
        table=table,
        key=names.DRIFT_TABLE_ARTIFACT,
        description=f"{verdict}: {result.drifted_count}/{len(result.columns)} input columns ({result.share:.0%}), "
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
    return await _outcome(step(*args, return_state=True))


async def _settled(future: PrefectFuture) -> tuple[Any, str]:
    """Wait for a task submitted to run beside the flow's own steps; as :func:`_attempt`."""
    future.wait()
    return await _outcome(future.state)


async def _outcome(state: State) -> tuple[Any, str]:
    if state.is_completed():
        return await state.aresult(), ""
    return None, str(state.message or state.name)


async def _report(settings: Settings, result: DriftResult, snapshot: Snapshot, summary: MonitorSummary):
    """Keep the report (file, Evidently dashboard, MLflow, Prefect table); returns the summary with its
    links, and what could not be done (for the e-mail, then the flow's failure)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    # Independent: the workspace write and the MLflow run (mostly waiting on HTTP) run beside the HTML file.
    boarding = add_to_dashboard.submit(settings, snapshot, f"drift-{stamp}")
    opening = log_to_mlflow.submit(settings, result, summary, stamp)
    report = None
    try:
        report = save_report(snapshot, settings.report_dir, stamp)
    finally:  # the MLflow run is closed either way (FAILED when the report could not be written)
        run_id, mlflow_error = await _settled(opening)
        tracked = None
        if run_id:
            tracked, mlflow_error = await _attempt(attach_report, settings, run_id, report)
    summary = replace(
        summary,
        columns=[asdict(c) for c in result.columns],
        report_path=str(report),
        latest_report=str(report.parent / "latest.html"),
    )
    board, board_error = await _settled(boarding)
    links = {"Evidently dashboard": (board or {}).get("url", ""), "MLflow run": (tracked or {}).get("run_url", "")}
    publish_table(result, links)
    problems = {"MLflow": mlflow_error, "Evidently's workspace": board_error}
    summary = replace(summary, mlflow=tracked or {"error": mlflow_error}, dashboard=board or {"error": board_error})
    return summary, {k: v for k, v in problems.items() if v}


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
    return notify.drift_message(
        result,
        summary=summary,
        report_url=(summary.mlflow or {}).get("run_url", ""),
        actions=actions,
    )


async def _compare(
    settings: Settings, data: Current, reference_path: str, scored: tuple[pd.DataFrame, str], threshold: float
) -> tuple[MonitorSummary, DriftResult | None, dict[str, str]]:
    """Compare, keep the report; returns the summary, the result (None with too few rows) and what could
    not be kept (by where)."""
    enough = len(data.frame) >= settings.drift_min_rows
    reference, note = scored
    summary = MonitorSummary(
        data.source, reference_path, data.rows, len(reference), threshold, "", False, None, [],
        sampled_rows=data.sampled_rows, model_versions=data.versions,
    )  # fmt: skip
    if not enough:
        return summary, None, {}
    result, snapshot = drift_step(data, reference, threshold)
    prediction = {"detected": None, "score": None, "method": None, "reason": note}
    if result.prediction is not None:
        prediction = {**result.prediction.to_json(), "reference": f"{note} on {reference_path}"}
    summary, problems = await _report(settings, result, snapshot, replace(summary, prediction_drift=prediction))
    return summary, result, problems


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
    # One Prefect client for all the steps (about 40 ms each otherwise).
    with long_lived_frozen(), SyncClientContext.get_or_create():
        window = settings.drift_window_days if window_days is None else window_days
        reference_path = str(reference or settings.reference_path)
        # Side by side: the reference's scores need the registry (HTTP), the window the database.
        scoring = read_reference.submit(reference_path, settings, current is None)
        data = read_current(current, settings, window)
        summary, result, problems = await _compare(settings, data, reference_path, scoring.result(), threshold)
        decision = decide(
            result,
            has_recipients=bool(recipients),
            retrain_on_drift=settings.retrain_on_drift if retrain is None else retrain,
            mail_when_quiet=settings.mail_when_quiet,
        )
        summary = _verdict(summary, result, decision)
        logger.info(_log_line(summary, settings.drift_min_rows))
        retraining, actions, retrain_error = await _act(decision, result, settings.train_deployment)
        actions += [f"The run could not be logged to {where}: {error}" for where, error in problems.items()]
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
    failures = [f"{where} logging failed: {error}" for where, error in problems.items()]
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
    moved = (summary.prediction_drift or {}).get("detected")
    return (
        f"{summary.status}: {len(summary.drifted_columns)}/{len(summary.columns)} columns drifted "
        f"({summary.share:.0%}, threshold {summary.threshold:.0%}): {', '.join(summary.drifted_columns) or 'none'}"
        + ("; the model's output drifted" if moved else "")
    )
