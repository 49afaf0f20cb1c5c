"""MLflow tracking shared by training and monitoring: experiments, runs and batched logging.

Every value goes in one ``log_batch`` call per run (one HTTP round trip) instead of one call per
metric, and runs are addressed by id with a client, never through MLflow's global "active run", so
several tasks (and threads) can log without sharing hidden state.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient


def experiment_id(client: MlflowClient, name: str) -> str:
    """The id of the experiment of that name, created on first use."""
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found is not None else client.create_experiment(name)


def log_batch(
    client: MlflowClient,
    run_id: str,
    *,
    metrics: Mapping[str, float] | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    step: int = 0,
) -> None:
    """Metrics, parameters and tags of one run in a single request."""
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(key, float(value), now, step) for key, value in (metrics or {}).items()],
        params=[Param(key, str(value)) for key, value in (params or {}).items()],
        tags=[RunTag(key, str(value)) for key, value in (tags or {}).items()],
    )


def start_run(client: MlflowClient, experiment: str, name: str, tags: Mapping[str, str] | None = None) -> str:
    """A new run in that experiment (created if missing); returns its id."""
    return client.create_run(experiment_id(client, experiment), run_name=name, tags=dict(tags or {})).info.run_id


TRAINING_TAG = {"heartrisk.kind": "training"}  # marks the parent run of a training, not its trials


@dataclass(frozen=True)
class TrainingInProgress:
    """A training run that has started and not finished, and how long the last one took.

    ``kind`` names where it was found: MLflow here, Prefect (``serving.flow_runs``) before MLflow shows it,
    when ``state`` may be "queued" (waiting for a worker or for its process to start).
    """

    run_name: str
    started: float
    last_seconds: float | None
    kind: str = "MLflow run"
    state: str = "started"


def training_in_progress(
    client: MlflowClient, experiment: str, *, newer_than: float = 3600
) -> TrainingInProgress | None:
    """The newest running training of that experiment started in the last ``newer_than`` seconds.

    Older ones count as abandoned: a process killed mid-run leaves its MLflow run RUNNING for ever.
    """
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    kind = f"tags.`heartrisk.kind` = '{TRAINING_TAG['heartrisk.kind']}'"
    running = client.search_runs(
        [found.experiment_id], f"{kind} and attributes.status = 'RUNNING'", order_by=["start_time DESC"], max_results=1
    )
    if not running or running[0].info.start_time / 1000 < time.time() - newer_than:
        return None
    done = client.search_runs(
        [found.experiment_id], f"{kind} and attributes.status = 'FINISHED'", order_by=["start_time DESC"], max_results=1
    )
    last = (done[0].info.end_time - done[0].info.start_time) / 1000 if done and done[0].info.end_time else None
    return TrainingInProgress(running[0].info.run_name, running[0].info.start_time / 1000, last)
