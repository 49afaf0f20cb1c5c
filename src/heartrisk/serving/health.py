"""Probes for supervisors and load balancers, and the Prometheus metrics: the details on the internal port only.

The app listens on two ports (``gunicorn_conf.bind``): the public one (``HEARTRISK_APP_PORT``), which nginx
publishes, and the internal one (``HEARTRISK_APP_INTERNAL_PORT``), which no layout publishes. On the public
port ``/readyz`` says ready or not with one short reason, and ``/metrics`` does not exist (404): the
database's user and host, MLflow's address, exception text and the model's history are for operators, and
stay on the internal port (and in the app's log).
"""

from __future__ import annotations

import dataclasses
import time

from flask import Blueprint, Response, abort, jsonify, request

from heartrisk.serving import metrics
from heartrisk.serving.model_holder import HolderStatus
from heartrisk.serving.runtime import runtime

bp = Blueprint("health", __name__)

# The public /readyz's reasons: fixed words, never text from a driver, a server or an exception.
NO_MODEL = "no model loaded"
MODEL_REFUSED = "model refused"
LOG_UNAVAILABLE = "prediction log unavailable"


def internal() -> bool:
    """Whether this request came in on the internal port.

    Told by ``SERVER_PORT``, which the server takes from the socket that accepted the connection, never from
    the request: gunicorn 26.2 (``gunicorn/http/wsgi.py``, ``create``) sets it from the ``server`` address,
    which its threaded worker passes as ``listener.getsockname()`` of the listener that accepted
    (``gunicorn/workers/gthread.py``, ``accept``); it reads the Host header only for a unix-socket listener,
    and the app binds TCP ports only. Werkzeug's server (``flask run``) also takes it from its one socket, so
    there the port it runs on decides (on the usual one, no details); in Flask's test client it is the base
    URL's port. ``ProxyFix`` is given ``x_for`` and ``x_proto`` only, so an ``X-Forwarded-Port`` (which it
    would copy into ``SERVER_PORT`` with ``x_port``) changes nothing; neither does a Host header.
    """
    return request.environ.get("SERVER_PORT") == str(runtime().settings.app.internal_port)


@bp.get("/healthz")
def healthz():
    """The process answers; says nothing about the model (that is /readyz)."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """200 while a model answers (even if MLflow is down, or the champion was refused: the last good one) and
    the prediction log can be written; 503 otherwise (a request would get 503 too: nothing is served
    unlogged). The public port says only that and one short reason; the internal port says everything."""
    ready, status, log_problem = readiness()
    if internal():
        body = _details(status, log_problem, ready)
    else:
        body = {"ready": True} if ready else {"ready": False, "reason": public_reason(status)}
    return jsonify(body), 200 if ready else 503


def readiness() -> tuple[bool, HolderStatus, str | None]:
    """Whether this app answers predictions now (a model, and a prediction log it can write), the holder's status
    and the log's problem: the one rule of every readiness probe (``/readyz``, the Open Inference Protocol's)."""
    rt = runtime()
    status = rt.holder.status()
    log_problem = rt.log.problem()
    return status.model is not None and log_problem is None, status, log_problem


def public_reason(status: HolderStatus) -> str:
    """Why the app is not ready, in a few fixed words (the log's problem only matters when a model is there)."""
    if status.model is None:
        return MODEL_REFUSED if status.refused is not None else NO_MODEL
    return LOG_UNAVAILABLE


def _details(status: HolderStatus, log_problem: str | None, ready: bool) -> dict[str, object]:
    rt = runtime()
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
    return body


@bp.get("/metrics")
def prometheus_metrics():
    """Prometheus' scrape, on the internal port only (elsewhere a 404 like any unknown path)."""
    if not internal():
        abort(404)
    payload, content_type = metrics.render(runtime().settings.app.metrics_dir)
    return Response(payload, content_type=content_type)
