"""Probes for supervisors and load balancers, and the Prometheus metrics."""

from __future__ import annotations

import dataclasses
import time

from flask import Blueprint, Response, jsonify

from heartrisk.serving import metrics
from heartrisk.serving.runtime import runtime

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process answers; says nothing about the model (that is /readyz)."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """200 while a model answers (even if MLflow is down, or the champion was refused: the last good one) and
    the prediction log can be written; 503 with the reason otherwise (a request would get 503 too: nothing is
    served unlogged). ``refused`` names the champion's version when it was refused, and why."""
    rt = runtime()
    status = rt.holder.status()
    log_problem = rt.log.problem()
    ready = status.model is not None and log_problem is None
    body: dict[str, object] = {
        "ready": ready,
        "model_name": rt.settings.mlflow.model_name,
        "model_version": None if status.model is None else status.model.version,
        "runtime": None if status.model is None else status.model.runtime,
        "runtime_note": None if status.model is None else status.model.runtime_note or None,
        "mlflow_reachable": status.mlflow_reachable,
        "problem": status.problem or None,
        "refused": None if status.refused is None else dataclasses.asdict(status.refused),
        "last_check_seconds_ago": None if status.checked_at is None else round(time.time() - status.checked_at, 1),
        "prediction_log": {"backend": rt.log.backend, "reachable": log_problem is None, "problem": log_problem},
    }
    if status.model is not None and status.problem:
        body["note"] = f"serving the last good model, version {status.model.version}, until the problem clears"
    return jsonify(body), 200 if ready else 503


@bp.get("/metrics")
def prometheus_metrics():
    payload, content_type = metrics.render(runtime().settings.app.metrics_dir)
    return Response(payload, content_type=content_type)
