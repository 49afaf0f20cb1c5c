"""Prometheus metrics of the app, correct across gunicorn workers.

Under gunicorn, ``gunicorn_conf`` sets ``PROMETHEUS_MULTIPROC_DIR`` before this module is imported,
so every worker writes its values to files there and /metrics (answered by any one worker) adds them
up. Without that variable (unit tests, a plain ``flask run``) the usual in-process registry is used.
"""

from __future__ import annotations

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
    from heartrisk.serving.model_holder import Refusal

REQUESTS = Counter(
    "heartrisk_http_requests_total", "HTTP requests answered, by route and status", ["method", "endpoint", "status"]
)
LATENCY = Histogram(
    "heartrisk_http_request_duration_seconds",
    "Time to answer an HTTP request, by route",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
PREDICTIONS = Counter("heartrisk_predictions_total", "Predictions served (one per record), by label", ["label"])
MODEL = Gauge(
    "heartrisk_model_info",
    "1 for the model version a live worker answers with, and its runtime (two show during a swap)",
    ["model", "version", "runtime"],
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
    LATENCY.labels(endpoint).observe(seconds)


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
