"""Monitoring: a Prefect flow that compares served data with the reference data using Evidently.

Current data is the prediction log over a time window (or a CSV); the reference is
``data/reference.csv``. The flow keeps the Evidently HTML report (state folder and MLflow), publishes
a per-column table in Prefect, starts retraining when enough columns drifted, then e-mails the
result. The report is written before anything that can fail, so a failure loses nothing.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.core.report import Snapshot
from evidently.presets import DataDriftPreset
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import SyncClientContext

from heartrisk import notify
from heartrisk.config import Settings, get_settings
from heartrisk.data import DataError, load_csv, validate_frame
from heartrisk.predlog import PredictionLog
from heartrisk.schema import BY_NAME, COLUMNS, FEATURE_NAMES, OUTPUT

COUNT_METRIC = "evidently:metric_v2:DriftedColumnsCount"
COLUMN_METRIC = "evidently:metric_v2:ValueDrift"


@dataclass(frozen=True)
class ColumnDrift:
    """Evidently's verdict on one column: which test, its score and threshold, drifted or not."""

    column: str
    kind: str
    method: str
    score: float
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class DriftResult:
    """Dataset-level verdict (share of drifted columns >= threshold) with the per-column verdicts."""

    share: float
    drifted_count: int
    threshold: float
    columns: tuple[ColumnDrift, ...]

    @property
    def drift_detected(self) -> bool:
        return self.share >= self.threshold

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]


def shared_columns(current: pd.DataFrame, reference: pd.DataFrame) -> list[str]:
    """Schema columns present in both frames (served data has no label, a CSV may have one)."""
    return [name for name in COLUMNS if name in current.columns and name in reference.columns]


def data_definition(columns: Sequence[str]) -> DataDefinition:
    """Column types from the schema, so Evidently picks the right test (no guessing from values)."""
    return DataDefinition(
        numerical_columns=[c for c in columns if BY_NAME[c].kind == "numeric"],
        categorical_columns=[c for c in columns if BY_NAME[c].kind == "categorical"],
    )


def run_evidently(current: pd.DataFrame, reference: pd.DataFrame, threshold: float) -> Snapshot:
    """Evidently's DataDriftPreset on the shared columns, with its per-column tests switched on."""
    columns = shared_columns(current, reference)
    definition = data_definition(columns)
    report = Report([DataDriftPreset(columns=columns, drift_share=threshold)], include_tests=True)
    return report.run(
        Dataset.from_pandas(current[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition),
    )


def parse_snapshot(snapshot: dict[str, Any], threshold: float) -> DriftResult:
    """Read the snapshot's dict by metric config type (display names change between releases)."""
    metrics = snapshot["metrics"]
    counts = [m for m in metrics if m["config"]["type"] == COUNT_METRIC]
    if len(counts) != 1:
        raise ValueError(f"expected one {COUNT_METRIC} metric in the Evidently snapshot, found {len(counts)}")
    verdicts = {
        test["metric_config"]["metric_id"]: test["status"]
        for test in snapshot["tests"]
        if test["metric_config"]["params"]["type"] == COLUMN_METRIC
    }
    columns = []
    for metric in metrics:
        config = metric["config"]
        if config["type"] != COLUMN_METRIC:
            continue
        if metric["id"] not in verdicts:
            raise ValueError(f"Evidently gave no drift verdict for column {config['column']!r}")
        columns.append(
            ColumnDrift(
                column=config["column"],
                kind=BY_NAME[config["column"]].kind,
                method=config["method"],
                score=float(metric["value"]),
                threshold=float(config["threshold"]),
                drifted=verdicts[metric["id"]] == "FAIL",
            )
        )
    value = counts[0]["value"]
    return DriftResult(
        share=float(value["share"]), drifted_count=int(value["count"]), threshold=threshold, columns=tuple(columns)
    )


def compute_drift(current: pd.DataFrame, reference: pd.DataFrame, threshold: float) -> tuple[DriftResult, Snapshot]:
    snapshot = run_evidently(current, reference, threshold)
    return parse_snapshot(snapshot.dict(), threshold), snapshot


def read_schema_csv(path: Path | str) -> pd.DataFrame:
    """Validate a CSV; keep the label column when the file has one (it is compared too)."""
    path = Path(path)
    with_target = False
    if path.is_file():
        with path.open(encoding="utf-8", errors="replace") as handle:
            header = [name.strip() for name in handle.readline().split(",")]
        with_target = OUTPUT.name in header
    return load_csv(path, require_target=with_target)


def validate_served(served: pd.DataFrame, source: str) -> pd.DataFrame:
    """Check served rows against the schema on each column's distinct values (seconds less at 1M rows).

    The rules apply cell by cell, so valid distinct values mean valid rows. On a failure the whole
    frame is checked again, so the message names the real rows.
    """
    features = served[list(FEATURE_NAMES)]
    distinct = {name: features[name].drop_duplicates().to_numpy() for name in FEATURE_NAMES}
    longest = max(len(values) for values in distinct.values())
    sample = pd.DataFrame({name: np.resize(values, longest) for name, values in distinct.items()})
    try:
        typed = validate_frame(sample, require_target=False, source=source)
    except DataError:
        validate_frame(features, require_target=False, source=source)
        raise
    return features.astype(typed.dtypes.to_dict())


@task(name="load-current-data", cache_policy=NO_CACHE)
def load_current(current: str | None, predictions_db: str, window_days: float) -> tuple[pd.DataFrame, str]:
    """The data to watch: a given CSV, or what the app served in the last ``window_days``."""
    if current:
        return read_schema_csv(current), current
    served = PredictionLog(predictions_db).features(days=window_days)
    source = f"prediction log {predictions_db}, last {window_days:g} days"
    return validate_served(served, source), source


@task(name="load-reference-data", cache_policy=NO_CACHE)
def load_reference(reference: str) -> pd.DataFrame:
    return read_schema_csv(reference)


@task(name="compute-drift", cache_policy=NO_CACHE)
def drift_task(current: pd.DataFrame, reference: pd.DataFrame, threshold: float) -> tuple[DriftResult, Snapshot]:
    return compute_drift(current, reference, threshold)


@task(name="save-report", cache_policy=NO_CACHE)
def save_report(snapshot: Snapshot, report_dir: Path, stamp: str) -> Path:
    """Timestamped report plus a stable ``latest.html`` (replaced atomically) for links."""
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / f"drift-{stamp}.html"
    snapshot.save_html(str(path))  # Evidently writes nothing when given a Path object
    partial = report_dir / ".latest.html.tmp"
    shutil.copyfile(path, partial)
    partial.replace(report_dir / "latest.html")
    return path


@task(name="log-monitoring-run", cache_policy=NO_CACHE)
def log_to_mlflow(
    settings: Settings, result: DriftResult, report: Path, params: dict[str, Any], stamp: str
) -> dict[str, str]:
    """One MLflow run per monitoring run, so the MLflow UI charts drift over time."""
    client = MlflowClient(settings.mlflow_tracking_uri)
    experiment = client.get_experiment_by_name(settings.monitor_experiment)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(settings.monitor_experiment)
    tags = {"drift_detected": str(result.drift_detected).lower()}
    run_id = client.create_run(experiment_id, run_name=f"drift-{stamp}", tags=tags).info.run_id
    values = {"drift_share": result.share, "drifted_columns": result.drifted_count}
    values |= {"current_rows": params["current_rows"], "reference_rows": params["reference_rows"]}
    for column in result.columns:
        values[f"drift_score_{column.column}"] = column.score
        values[f"drifted_{column.column}"] = int(column.drifted)
    now = int(datetime.now(UTC).timestamp() * 1000)
    try:
        client.log_batch(
            run_id,
            metrics=[Metric(key, float(value), now, 0) for key, value in values.items()],
            params=[Param(key, str(value)) for key, value in params.items()],
        )
        client.log_artifact(run_id, str(report), "drift_report")
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id)
    return {"run_id": run_id, "run_url": settings.mlflow_run_url(experiment_id, run_id)}


@task(name="publish-drift-table", cache_policy=NO_CACHE)
def publish_table(result: DriftResult, report_url: str) -> None:
    table = [{**asdict(c), "label": BY_NAME[c.column].label} for c in result.columns]
    verdict = "drift detected" if result.drift_detected else "no drift"
    link = f" [Evidently report]({report_url})" if report_url else ""
    create_table_artifact(
        table=table,
        key="drift-columns",
        description=f"{verdict}: {result.drifted_count}/{len(result.columns)} columns ({result.share:.0%}), "
        f"threshold {result.threshold:.0%}.{link}",
    )


@task(name="start-retraining", cache_policy=NO_CACHE)
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


# Async on purpose: Prefect's sync engine joins its heartbeat thread at the end of every run, and the
# thread sleeps in 1-second steps, so a sync flow waits up to a second for nothing. The steps stay sync.
@flow(name="heart-attack-drift-monitoring")
async def monitor_flow(
    current: str | None = None,
    reference: str | None = None,
    recipients: list[str] | None = None,
    email_block: str | None = None,
    threshold: float | None = None,
    retrain: bool | None = None,
    window_days: float | None = None,
) -> dict[str, Any]:
    """Compare current data with the reference; report, alert and (on drift) retrain."""
    # One Prefect client for all the steps: each sync task outside it would open its own (about 40 ms).
    with SyncClientContext.get_or_create():
        settings = get_settings()
        logger = get_run_logger()
        threshold = settings.drift_threshold if threshold is None else threshold
        retrain = settings.retrain_on_drift if retrain is None else retrain
        window_days = settings.drift_window_days if window_days is None else window_days
        recipients = list(recipients or settings.email_recipients)
        reference_path = str(reference or settings.reference_path)

        current_frame, source = load_current(current, str(settings.predictions_db), window_days)
        reference_frame = load_reference(reference_path)
        summary: dict[str, Any] = {
            "current_source": source,
            "reference": reference_path,
            "current_rows": len(current_frame),
            "reference_rows": len(reference_frame),
            "threshold": threshold,
        }
        if len(current_frame) < settings.drift_min_rows:
            logger.warning(
                "Not enough data: %d current rows, at least %d needed (HEARTRISK_DRIFT_MIN_ROWS); no alert.",
                len(current_frame),
                settings.drift_min_rows,
            )
            return {
                **summary,
                "status": "not enough data",
                "drift_detected": False,
                "share": None,
                "drifted_columns": [],
            }

        result, snapshot = drift_task(current_frame, reference_frame, threshold)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        report = save_report(snapshot, settings.report_dir, stamp)
        summary.update(
            status="drift" if result.drift_detected else "no drift",
            drift_detected=result.drift_detected,
            share=result.share,
            drifted_columns=result.drifted_columns,
            columns=[asdict(c) for c in result.columns],
            report_path=str(report),
            latest_report=str(report.parent / "latest.html"),
        )
        logger.info(
            "%s: %d/%d columns drifted (%.0f%%, threshold %.0f%%): %s",
            summary["status"],
            result.drifted_count,
            len(result.columns),
            100 * result.share,
            100 * threshold,
            ", ".join(result.drifted_columns) or "none",
        )

        params = {k: summary[k] for k in ("current_source", "reference", "current_rows", "reference_rows", "threshold")}
        tracked, mlflow_error = await _attempt(log_to_mlflow, settings, result, report, params, stamp)
        summary["mlflow"] = tracked or {"error": mlflow_error}
        report_url = (tracked or {}).get("run_url", "")
        publish_table(result, report_url)

        actions: list[str] = []
        retrain_error = ""
        summary["retraining"] = None
        if result.drift_detected and retrain:
            started, retrain_error = await _attempt(start_retraining, settings.train_deployment)
            summary["retraining"] = started or {"error": retrain_error}
            actions.append(
                f"Retraining started: flow run {started['flow_run_name']} of {settings.train_deployment}; "
                "its promotion gate decides whether the new model serves."
                if started
                else f"Retraining could NOT be started ({settings.train_deployment}): {retrain_error}"
            )
        elif result.drift_detected:
            actions.append("Retraining is switched off (--no-retrain or HEARTRISK_RETRAIN_ON_DRIFT=false).")
        if mlflow_error:
            actions.append(f"The run could not be logged to MLflow: {mlflow_error}")

        if recipients:
            message = notify.drift_message(
                result,
                current_rows=len(current_frame),
                source=source,
                report_url=report_url,
                report_path=str(report),
                actions=actions,
            )
            summary["email"] = await notify.send(
                message,
                block=email_block or settings.email_block,
                sender=settings.email_from,
                recipients=recipients,
                retries=settings.smtp_retries,
                retry_delay=settings.smtp_retry_delay,
            )
        else:
            logger.warning("No recipients (--recipient or HEARTRISK_EMAIL_TO): no e-mail sent.")
            summary["email"] = {"sent": False, "recipients": []}

        failures = [f"MLflow logging failed: {mlflow_error}"] if mlflow_error else []
        failures += [f"retraining could not be started: {retrain_error}"] if retrain_error else []
        if failures:
            raise RuntimeError("; ".join(failures))
        return summary
