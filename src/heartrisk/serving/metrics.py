"""Prometheus metrics of the app, correct across gunicorn workers.

Under gunicorn, ``gunicorn_conf`` sets ``PROMETHEUS_MULTIPROC_DIR`` before this module is imported,
so every worker writes its values to files there and /metrics (answered by any one worker) adds them
up. Without that variable (unit tests, a plain ``flask run``) the usual in-process registry is used.

Each gauge's multiprocess mode says how the workers' values combine, chosen for what the alert rules in
``deploy/prometheus/rules.yml`` ask: the version each worker serves is kept per worker (``liveall``, a
``pid`` label), so one worker left on an old version shows whichever way the alias moved; the alias seen by
the replica is that of its most recent successful lookup (``livemostrecent``); a dead worker's gauges go
with it (``live*``, gunicorn's ``child_exit`` marks it dead). Labels stay few and bounded: routes (not
paths), statuses, the model's name and version, a fixed set of reasons.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from heartrisk.scoring import LoadedModel

if TYPE_CHECKING:
    from heartrisk.serving.model_holder import HolderStatus, Refusal

REQUESTS = Counter(
    "heartrisk_http_requests_total", "HTTP requests answered, by route and status", ["method", "endpoint", "status"]
)
LATENCY = Histogram(
    "heartrisk_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route",
    ["method", "endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
PREDICTIONS = Counter("heartrisk_predictions_total", "Predictions served (one per record), by label", ["label"])
ROWS_LOGGED = Counter(
    "heartrisk_prediction_rows_logged_total", "Rows written to the prediction log: one per record answered"
)
REFUSAL_REASONS = ("log_unavailable", "validation", "model_unavailable")
REFUSED_ROWS = Counter(
    "heartrisk_predictions_refused_total",
    "Records given no prediction, by reason: log_unavailable (the prediction log could not be written: 503), "
    "validation (a value outside the schema: 422), model_unavailable (no model loaded yet: 503)",
    ["reason"],
)
for _reason in REFUSAL_REASONS:  # every reason at 0 from the start, so the first refusal is an increase
    REFUSED_ROWS.labels(_reason)
MODEL = Gauge(
    "heartrisk_model_info",
    "1 for the model version a live worker answers with, and its runtime (two show during a swap)",
    ["model", "version", "runtime"],
    multiprocess_mode="livemax",
)

SERVING = Gauge(
    "heartrisk_model_serving_version",
    "The registered version each live worker answers with, as a number (0: none loaded yet); one per worker",
    ["model"],
    multiprocess_mode="liveall",
)
LOADED = Gauge(
    "heartrisk_model_loaded_timestamp_seconds",
    "When each live worker loaded the version it answers with (Unix time); one per worker",
    ["model"],
    multiprocess_mode="liveall",
)
ALIAS = Gauge(
    "heartrisk_model_alias_version",
    "The version the champion alias pointed to at the replica's most recent lookup that reached MLflow "
    "(0: no such alias)",
    ["model"],
    multiprocess_mode="livemostrecent",
)
LAST_POLL = Gauge(
    "heartrisk_model_last_poll_success_timestamp_seconds",
    "When a live worker of the replica last reached MLflow to look up the champion alias (Unix time)",
    ["model"],
    multiprocess_mode="livemax",
)

REFUSED = Gauge(
    "heartrisk_model_refused",
    "1 while the champion alias points to a version a live worker refused, by its reason in one word "
    "(unsigned, other_key, bad_signature, changed, runtimes_disagree); the model before it keeps answering",
    ["model", "version", "reason"],
    multiprocess_mode="livemax",
)


def observe_request(method: str, endpoint: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, endpoint, str(status)).inc()
    LATENCY.labels(method, endpoint).observe(seconds)


def rows_logged(rows: int) -> None:
    ROWS_LOGGED.inc(rows)


def refused(reason: str, rows: int) -> None:
    """``rows`` records given no prediction, for ``reason`` (one of :data:`REFUSAL_REASONS`)."""
    if reason not in REFUSAL_REASONS:
        raise ValueError(f"unknown refusal reason {reason!r}: one of {', '.join(REFUSAL_REASONS)}")
    REFUSED_ROWS.labels(reason).inc(rows)


def observe_predictions(labels: list[int]) -> None:
    ones = sum(labels)
    if ones:
        PREDICTIONS.labels("1").inc(ones)
    if len(labels) - ones:
        PREDICTIONS.labels("0").inc(len(labels) - ones)


def model_swapped(old: LoadedModel | None, new: LoadedModel) -> None:
    if old is not None:
        MODEL.labels(old.name, old.version, old.runtime).set(0)
    MODEL.labels(new.name, new.version, new.runtime).set(1)
    SERVING.labels(new.name).set(_number(new.version))
    LOADED.labels(new.name).set(new.loaded_at)


def model_polled(status: HolderStatus, model: str) -> None:
    """After each lookup of the alias: what it pointed to and when, if MLflow answered; and 0 as the version
    served while this worker has none (a worker that never reached MLflow shows too)."""
    if status.mlflow_reachable:
        ALIAS.labels(model).set(0 if status.alias_version is None else _number(status.alias_version))
        LAST_POLL.labels(model).set(status.checked_at or time.time())
    if status.model is None:
        SERVING.labels(model).set(0)


def _number(version: str) -> float:
    """MLflow's versions are whole numbers in text; anything else is NaN rather than a wrong number."""
    try:
        return float(int(version))
    except ValueError:
        return float("nan")


def model_refused(old: Refusal | None, new: Refusal | None) -> None:
    if old is not None:
        REFUSED.labels(old.model, old.version, old.kind).set(0)
    if new is not None:
        REFUSED.labels(new.model, new.version, new.kind).set(1)


def render(multiprocess_dir: str) -> tuple[bytes, str]:
    """The exposition text: all workers' values when ``multiprocess_dir`` is set, else this process's."""
    if multiprocess_dir and Path(multiprocess_dir).is_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
