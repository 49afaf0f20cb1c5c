"""Where a monitoring run's report is kept: an HTML file, the Evidently workspace (whose dashboard charts
every run), an MLflow run (the same charts in MLflow, the report as its artifact) and a table on the
Prefect flow run's page.

The HTML file is written first and nothing else can lose it; the other destinations may fail on their
own (a server down), and each failure comes back as :class:`~heartrisk.summaries.Failed`, for the
e-mail to say and the flow to fail on after the alert went out.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow.tracking import MlflowClient
from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.futures import PrefectFuture

from heartrisk import names, tracking
from heartrisk.drift import DriftResult
from heartrisk.monitoring.current import Current
from heartrisk.schema import BY_NAME
from heartrisk.settings import EvidentlySettings, MlflowSettings, Settings
from heartrisk.summaries import DashboardEntry, Failed, TrackedRun, link

if TYPE_CHECKING:
    from evidently.core.report import Snapshot

STEP = {"cache_policy": NO_CACHE}


@dataclass(frozen=True)
class Compared:
    """What a run compared: the current data, the reference file and its rows, the alert threshold."""

    current: Current
    reference: str
    reference_rows: int
    threshold: float


@dataclass(frozen=True)
class Kept:
    """Where the report went; a destination that failed holds why."""

    report: Path
    mlflow: TrackedRun | Failed
    dashboard: DashboardEntry | Failed


async def keep(settings: Settings, result: DriftResult, snapshot: Snapshot, compared: Compared) -> Kept:
    """Keep the report everywhere: the HTML file in this process while the workspace write and the MLflow
    run (mostly waiting on HTTP) run beside it; then the Prefect table, with the links that worked."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    boarding = add_to_dashboard.submit(settings.evidently, snapshot, f"drift-{stamp}")
    opening = log_to_mlflow.submit(settings.mlflow, result, compared, stamp)
    report = None
    try:
        report = save_report(snapshot, settings.drift.report_dir, stamp)
    finally:  # the MLflow run is closed either way (FAILED when the report could not be written)
        tracked = await settled(opening)
        if not isinstance(tracked, Failed):
            tracked = await attempt(attach_report, settings.mlflow, tracked, report)
    board = await settled(boarding)
    kept = Kept(report, tracked, board)
    publish_table(result, {"Evidently dashboard": link(board), "MLflow run": link(tracked)})
    return kept


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
def add_to_dashboard(evidently: EvidentlySettings, snapshot: Snapshot, name: str) -> DashboardEntry:
    """The run's snapshot in the Evidently workspace's project, whose dashboard charts every run."""
    from heartrisk import dashboard  # Evidently's workspace code, only for a run that compared data

    return DashboardEntry(**dashboard.add_run(evidently, snapshot, name))


def metrics(result: DriftResult, compared: Compared) -> dict[str, float]:
    """What the MLflow run charts: the verdicts, the rows, and the prediction drift."""
    current = compared.current
    values = {"drift_share": result.share, "drifted_columns": result.drifted_count}
    values |= {"current_rows": current.rows, "reference_rows": compared.reference_rows}
    if current.sampled_rows is not None:
        values["sampled_rows"] = current.sampled_rows
    values |= {f"rows_model_v{version}": rows for version, rows in current.versions.items()}
    for column in result.columns:
        values |= {f"drift_score_{column.column}": column.score, f"drifted_{column.column}": int(column.drifted)}
    if (prediction := result.prediction) is not None:
        values |= {"prediction_drift_score": prediction.probability.score}
        values |= {"prediction_drifted": int(prediction.detected)}
        values |= {"mean_probability": prediction.mean_probability[0], "positive_rate": prediction.positive_rate[0]}
    return values


@task(name="log-monitoring-run", **STEP)
def log_to_mlflow(mlflow: MlflowSettings, result: DriftResult, compared: Compared, stamp: str) -> str:
    """One MLflow run per monitoring run, so the MLflow UI charts drift over time: opened with its metrics
    while the report is written (it waits mostly on the server); returns its id."""
    client = MlflowClient(mlflow.tracking_uri)
    tags = {"drift_detected": str(result.drift_detected).lower()}
    run_id = tracking.start_run(client, mlflow.monitor_experiment, f"drift-{stamp}", tags)
    params = {"current_source": compared.current.source, "reference": compared.reference,
              "current_rows": compared.current.rows, "reference_rows": compared.reference_rows,
              "threshold": compared.threshold}  # fmt: skip
    try:
        tracking.log_batch(client, run_id, metrics=metrics(result, compared), params=params)
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    return run_id


@task(name="attach-report-to-mlflow-run", **STEP)
def attach_report(mlflow: MlflowSettings, run_id: str, report: Path | None) -> TrackedRun:
    """The HTML report as the MLflow run's artifact, and the run closed (FAILED without a report)."""
    client = MlflowClient(mlflow.tracking_uri)
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
    return TrackedRun(run_id, mlflow.run_url(experiment_id, run_id))


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


async def attempt(step: Callable[..., Any], *args: Any) -> Any:
    """Run a task that must not stop the alert; its result, or :class:`Failed` with the reason."""
    return await _outcome(step(*args, return_state=True))


async def settled(future: PrefectFuture) -> Any:
    """Wait for a task submitted to run beside the flow's own steps; as :func:`attempt`."""
    future.wait()
    return await _outcome(future.state)


async def _outcome(state: State) -> Any:
    if state.is_completed():
        return await state.aresult()
    return Failed(str(state.message or state.name))
