"""Prometheus metrics: requests, predictions by label, rows logged and refused by reason, the model version
each worker serves and the alias it follows; and how gunicorn's workers' values combine."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import subprocess
import sys
from typing import Any

import pytest
from flask.testing import FlaskClient
from prometheus_client import REGISTRY

from heartrisk.registry import StoredModel
from heartrisk.serving import create_app, metrics
from heartrisk.serving.model_holder import ModelHolder
from heartrisk.settings import Settings

pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


def test_metrics_count_requests_and_predictions_by_label(
    client: FlaskClient, internal_client: FlaskClient, record
) -> None:
    def sample(text: str, line: str) -> float:
        found = re.search(rf"^{re.escape(line)} (\S+)$", text, re.M)
        return float(found.group(1)) if found else 0.0

    label = client.post("/api/v1/predict", json=record).get_json()["label"]
    before = internal_client.get("/metrics").get_data(as_text=True)
    client.post("/api/v1/predict", json=[record] * 3)
    after = internal_client.get("/metrics").get_data(as_text=True)
    predicted = f'heartrisk_predictions_total{{label="{label}"}}'
    assert sample(after, predicted) - sample(before, predicted) == 3
    requests = 'heartrisk_http_requests_total{endpoint="/api/v1/predict",method="POST",status="200"}'
    assert sample(after, requests) - sample(before, requests) == 1
    assert sample(after, 'heartrisk_model_info{model="UnitModel",runtime="onnxruntime",version="7"}') == 1
    assert "heartrisk_http_request_duration_seconds_bucket" in after


def value(name: str, **labels: str) -> float:
    """A sample of this process's registry (0 when the series does not exist yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


REFUSED = "heartrisk_predictions_refused_total"


def test_every_refusal_reason_exists_at_zero_before_the_first_refusal() -> None:
    """Prometheus's increase() needs a sample before the first refusal: the alert on the log must see one."""
    text = metrics.render("")[0].decode()
    for reason in metrics.REFUSAL_REASONS:
        assert re.search(rf'^{REFUSED}{{reason="{reason}"}} \S+$', text, re.M), reason
    with pytest.raises(ValueError, match="unknown refusal reason 'slow'"):
        metrics.refused("slow", 1)


def test_rows_logged_count_each_answered_record(client: FlaskClient, record) -> None:
    before = value("heartrisk_prediction_rows_logged_total")
    assert client.post("/api/v1/predict", json=[record] * 3).status_code == 200
    assert client.post("/", data={k: str(v) for k, v in record.items()}).status_code == 200
    assert value("heartrisk_prediction_rows_logged_total") - before == 4


def test_records_the_log_could_not_take_are_refused_as_log_unavailable(unlogged_client: FlaskClient, record) -> None:
    before = value(REFUSED, reason="log_unavailable"), value("heartrisk_prediction_rows_logged_total")
    assert unlogged_client.post("/api/v1/predict", json=[record] * 2).status_code == 503
    assert unlogged_client.post("/", data={k: str(v) for k, v in record.items()}).status_code == 503
    after = value(REFUSED, reason="log_unavailable"), value("heartrisk_prediction_rows_logged_total")
    assert (after[0] - before[0], after[1] - before[1]) == (3, 0)


def test_invalid_records_are_refused_as_validation(client: FlaskClient, record) -> None:
    before = value(REFUSED, reason="validation")
    assert client.post("/api/v1/predict", json=[record, {**record, "age": 400}]).status_code == 422
    assert client.post("/", data={**{k: str(v) for k, v in record.items()}, "chol": "-1"}).status_code == 422
    assert value(REFUSED, reason="validation") - before == 3  # the whole batch of 2 is refused, and the form's 1


def test_records_without_a_model_are_refused_as_model_unavailable(settings: Settings, record) -> None:
    client = create_app(settings, ModelHolder(settings)).test_client()
    before = value(REFUSED, reason="model_unavailable")
    assert client.post("/api/v1/predict", json=[record] * 2).status_code == 503
    assert value(REFUSED, reason="model_unavailable") - before == 2


def test_latency_is_kept_by_method_and_route(client: FlaskClient, record) -> None:
    labels = {"method": "POST", "endpoint": "/api/v1/predict"}
    before = value("heartrisk_http_request_duration_seconds_count", **labels)
    client.post("/api/v1/predict", json=record)
    client.get("/")
    assert value("heartrisk_http_request_duration_seconds_count", **labels) - before == 1
    assert value("heartrisk_http_request_duration_seconds_count", method="GET", endpoint="/") >= 1


class Alias:
    """A registry whose champion alias is set by the test, and that can be made unreachable."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline, self.champion, self.reachable = pipeline, None, True

    def champion_version(self) -> str | None:
        if not self.reachable:
            raise ConnectionError("refused")
        return self.champion

    def load(self, version: str) -> StoredModel:
        return StoredModel(self.pipeline, None, "not exported")

    def training(self) -> None:
        return None


def sample(name: str, model: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"model": model})


def polled(settings: Settings, name: str, source: Alias) -> ModelHolder:
    """A holder of model ``name`` (a name of the test's own keeps other tests' values apart), its metrics
    subscribed as in a worker."""
    named = dataclasses.replace(settings, mlflow=dataclasses.replace(settings.mlflow, model_name=name))
    holder = ModelHolder(named, source=source)
    create_app(named, holder)
    return holder


def test_each_lookup_sets_the_alias_the_version_served_and_when(settings: Settings, pipeline: Any) -> None:
    """The version served, when it was loaded, the alias and the last lookup that reached MLflow."""
    name, source = "PolledModel", Alias(pipeline)
    holder = polled(settings, name, source)
    holder.refresh()
    assert (sample("heartrisk_model_alias_version", name), sample("heartrisk_model_serving_version", name)) == (0, 0)
    assert sample("heartrisk_model_last_poll_success_timestamp_seconds", name) == holder.status().checked_at
    source.champion = "12"
    holder.refresh()
    assert (sample("heartrisk_model_alias_version", name), sample("heartrisk_model_serving_version", name)) == (12, 12)
    assert sample("heartrisk_model_loaded_timestamp_seconds", name) == holder.model.loaded_at
    reached = holder.status().checked_at
    source.reachable, source.champion = False, "13"
    holder.refresh()
    assert sample("heartrisk_model_alias_version", name) == 12  # what the last lookup that reached MLflow saw
    assert sample("heartrisk_model_last_poll_success_timestamp_seconds", name) == reached
    assert sample("heartrisk_model_serving_version", name) == 12


def test_a_worker_that_never_reached_mlflow_serves_version_zero(settings: Settings) -> None:
    name, source = "NeverReached", Alias(None)
    source.reachable = False
    holder = polled(settings, name, source)
    assert sample("heartrisk_model_serving_version", name) is None
    holder.refresh()
    assert sample("heartrisk_model_serving_version", name) == 0
    assert sample("heartrisk_model_alias_version", name) is None
    assert sample("heartrisk_model_last_poll_success_timestamp_seconds", name) is None


def test_a_version_that_is_not_a_number_is_shown_as_nan() -> None:
    assert math.isnan(metrics._number("v3")) and metrics._number("3") == 3


WORKERS = """
import json, multiprocessing, sys
from prometheus_client import multiprocess
from prometheus_client.parser import text_string_to_metric_families
from heartrisk.scoring import LoadedModel
from heartrisk.serving import metrics
from heartrisk.serving.model_holder import HolderStatus

def worker(version, alias):
    model = LoadedModel("M", version, None, 1000.0 + int(version), 1)
    metrics.model_swapped(None, model)
    metrics.model_polled(HolderStatus(model, "", True, 2000.0 + int(version), "", alias_version=alias), model="M")
    metrics.refused("log_unavailable", 2)

def seen(folder):
    found = {}
    for family in text_string_to_metric_families(metrics.render(folder)[0].decode()):
        for s in family.samples:
            if s.name.startswith(("heartrisk_model_", "heartrisk_predictions_refused")) and not "info" in s.name:
                found.setdefault(s.name, []).append([s.labels.get("pid"), s.labels.get("reason"), s.value])
    return found

folder, fork = sys.argv[1], multiprocessing.get_context("fork")
pids = []
for version, alias in (("3", "3"), ("4", "4")):  # one worker after the other: the second looked up last
    process = fork.Process(target=worker, args=(version, alias))
    process.start()
    process.join()
    pids.append(str(process.pid))
both = seen(folder)
multiprocess.mark_process_dead(int(pids[0]), folder)
print(json.dumps({"pids": pids, "both": both, "after": seen(folder)}))
"""


def test_across_gunicorn_workers_each_version_served_shows_and_a_dead_workers_goes(tmp_path) -> None:
    """Two forked workers in multiprocess mode, as under gunicorn: the version each serves is one series per
    worker, the alias is the most recent lookup's, the last lookup the newest; a dead worker's gauges go with
    it, its refusals stay counted."""
    folder = tmp_path / "metrics"
    folder.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    done = subprocess.run([sys.executable, "-c", WORKERS, str(folder)], env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout)
    first, second = seen["pids"]
    both, after = seen["both"], seen["after"]
    assert sorted(both["heartrisk_model_serving_version"]) == [[first, None, 3.0], [second, None, 4.0]]
    assert sorted(both["heartrisk_model_loaded_timestamp_seconds"]) == [[first, None, 1003.0], [second, None, 1004.0]]
    assert both["heartrisk_model_alias_version"] == [[None, None, 4.0]]
    assert both["heartrisk_model_last_poll_success_timestamp_seconds"] == [[None, None, 2004.0]]
    assert [None, "log_unavailable", 4.0] in both["heartrisk_predictions_refused_total"]
    assert after["heartrisk_model_serving_version"] == [[second, None, 4.0]]
    assert [None, "log_unavailable", 4.0] in after["heartrisk_predictions_refused_total"]
