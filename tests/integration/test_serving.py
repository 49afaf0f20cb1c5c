"""The app under real gunicorn against a real MLflow server, both on free loopback ports."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from mlflow.tracking import MlflowClient
from prometheus_client.mmap_dict import MmapedDict

from heartrisk import export
from heartrisk.data import load_csv
from heartrisk.schema import FEATURE_NAMES
from tests.support.app import App, Served
from tests.support.models import register
from tests.support.paths import HEART
from tests.support.predlog import count as count_rows

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:X does not have valid feature names")]


@pytest.fixture
def app(served: Served) -> App:
    return served.app


@pytest.fixture
def registered(served: Served) -> dict[str, Any]:
    return {"version": served.version, "pipeline": served.pipeline, "model": served.model}


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    frame = load_csv(HEART).head(20)
    return [{n: frame.iloc[i][n].item() for n in FEATURE_NAMES} for i in range(len(frame))]


def test_onnx_runtime_answers_and_the_api_gives_the_champion_pipelines_probability(
    app: App, registered: dict, records: list
) -> None:
    ready = requests.get(f"{app.internal_url}/readyz", timeout=60).json()
    assert (ready["model_version"], ready["runtime"]) == (registered["version"], export.ONNX_RUNTIME)
    assert "matches scikit-learn on 304 reference rows" in ready["runtime_note"]
    rows = records + load_csv(HEART).sample(200, random_state=1)[list(FEATURE_NAMES)].to_dict("records")
    expected = registered["pipeline"].predict_proba(pd.DataFrame(rows, columns=list(FEATURE_NAMES)))[:, 1]
    batch = requests.post(f"{app.url}/api/v1/predict", json=rows, timeout=60)
    assert batch.status_code == 200
    assert [r["probability"] for r in batch.json()] == pytest.approx(expected.tolist(), abs=export.TOLERANCE)
    assert {r["model_version"] for r in batch.json()} == {registered["version"]}
    single = requests.post(f"{app.url}/api/v1/predict", json=records[3], timeout=60).json()
    assert single["probability"] == pytest.approx(expected[3], abs=export.TOLERANCE)
    # the original project's form: urlencoded, same field names, no token; the footer names the runtime
    page = requests.post(app.url + "/", data={k: str(v) for k, v in records[3].items()}, timeout=60)
    assert page.status_code == 200
    assert f'<output id="probability" class="value">{single["probability"] * 100:.1f}&nbsp;%</output>' in page.text
    assert f'<span id="model-version">{registered["version"]}</span>' in page.text
    assert f'<span id="runtime">{export.ONNX_RUNTIME}</span>' in page.text
    metrics = requests.get(f"{app.internal_url}/metrics", timeout=60).text
    model, version = registered["model"], registered["version"]
    info = f'heartrisk_model_info{{model="{model}",runtime="onnxruntime",version="{version}"}} 1.0'
    assert info in metrics
    # each of the 2 gunicorn workers says which version it serves; the alias and the refusal reasons are there
    serving = re.findall(rf'^heartrisk_model_serving_version{{model="{model}",pid="\d+"}} (\S+)$', metrics, re.M)
    assert serving == [f"{float(version)}"] * 2
    assert f'heartrisk_model_alias_version{{model="{model}"}} {float(version)}' in metrics
    assert 'heartrisk_predictions_refused_total{reason="log_unavailable"} 0.0' in metrics


def test_the_profile_the_study_links_to_disease_gets_the_higher_probability(app: App) -> None:
    """The mean record with cp=0, exng=1, caa=2 against the same record with cp=3, exng=0, caa=0."""
    frame = load_csv(HEART)[list(FEATURE_NAMES)]
    mean = {
        name: round(float(frame[name].mean()), 1) if name == "oldpeak" else round(frame[name].mean())
        for name in FEATURE_NAMES
    }
    sick = requests.post(f"{app.url}/api/v1/predict", json={**mean, "cp": 0, "exng": 1, "caa": 2}, timeout=60)
    well = requests.post(f"{app.url}/api/v1/predict", json={**mean, "cp": 3, "exng": 0, "caa": 0}, timeout=60)
    assert sick.status_code == well.status_code == 200, sick.text + well.text
    assert sick.json()["probability"] > well.json()["probability"]
    for answer in (sick.json(), well.json()):
        assert answer["label"] == int(answer["probability"] >= 0.5)


def test_bad_values_give_inline_errors_and_422_never_500(app: App, records: list) -> None:
    url = app.url
    page = requests.post(url + "/", data={**{k: str(v) for k, v in records[0].items()}, "trtbps": "999"}, timeout=60)
    assert page.status_code == 422
    assert '<p class="error" id="trtbps-error">' in page.text
    api = requests.post(f"{url}/api/v1/predict", json={**records[0], "thall": 9}, timeout=60)
    assert api.status_code == 422
    assert "thall" in api.json()["fields"]
    json_type = {"Content-Type": "application/json"}
    garbage = [
        requests.post(f"{url}/api/v1/predict", data=b"\x00\xff", headers=json_type, timeout=60),
        requests.post(f"{url}/api/v1/predict", data="{}", headers={"Content-Type": "text/plain"}, timeout=60),
        requests.post(f"{url}/api/v1/predict", json=[records[0]] * 10_001, timeout=60),
        requests.post(url + "/", data={"age": "NaN", "sex": "x" * 5000}, timeout=60),
        requests.get(url + "/no/such/page", timeout=60),
    ]
    assert [r.status_code for r in garbage] == [400, 415, 413, 422, 404]


def worker_predictions(metrics_dir: Path) -> dict[str, float]:
    """Predictions counted by each worker process, read from Prometheus' per-process files."""
    counts: dict[str, float] = {}
    for path in metrics_dir.glob("counter_*.db"):
        values = MmapedDict(str(path), read_mode=True)
        try:
            total = sum(v for key, v, _ in values.read_all_values() if json.loads(key)[0] == "heartrisk_predictions")
        finally:
            values.close()
        if total:
            counts[path.stem.split("_")[-1]] = total
    return counts


def test_concurrent_requests_over_all_workers_leave_exactly_one_row_each(app: App, records: list) -> None:
    n, threads = 400, 16
    before_rows, before_counts = count_rows(app.log), worker_predictions(app.metrics_dir)
    failures: list[str] = []

    def client(index: int) -> None:
        for i in range(index, n, threads):
            try:  # a new connection per request, so the kernel spreads them over the workers
                response = requests.post(f"{app.url}/api/v1/predict", json=records[i % len(records)], timeout=60)
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")
            except requests.RequestException as exc:
                failures.append(repr(exc))

    pool = [threading.Thread(target=client, args=(k,)) for k in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert failures == []
    assert count_rows(app.log) - before_rows == n
    after = worker_predictions(app.metrics_dir)
    served = {pid: after[pid] - before_counts.get(pid, 0) for pid in after}
    assert sum(served.values()) == n
    assert len([pid for pid, count in served.items() if count]) == 2, served
    metrics = requests.get(f"{app.internal_url}/metrics", timeout=60).text
    served_lines = [line for line in metrics.splitlines() if line.startswith("heartrisk_predictions_total{")]
    total = sum(float(line.split()[-1]) for line in served_lines)
    assert total == sum(after.values())


def test_promotion_is_picked_up_without_a_failed_request(app: App, registered: dict, records: list) -> None:
    answers: list[tuple[int, str]] = []
    errors: list[str] = []
    done = threading.Event()

    def client() -> None:
        while not done.is_set():
            try:  # a new connection each time, so both workers answer
                response = requests.post(f"{app.url}/api/v1/predict", json=records[0], timeout=60)
                answers.append((response.status_code, response.json().get("model_version", "")))
            except (requests.RequestException, ValueError) as exc:
                errors.append(repr(exc))

    thread = threading.Thread(target=client)
    thread.start()
    try:
        time.sleep(2)
        new = register(app.tracking_uri, registered["model"], registered["pipeline"])
        moved = len(answers)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            tail = answers[-20:]
            if len(answers) > moved + 20 and all(version == new for _, version in tail):
                break
            time.sleep(0.2)
        time.sleep(1)
    finally:
        done.set()
        thread.join(60)
        MlflowClient(app.tracking_uri).set_registered_model_alias(
            registered["model"], "champion", registered["version"]
        )
        _serving_again(app, registered["version"], records[0])
    assert errors == []
    assert [status for status, _ in answers if status != 200] == []
    versions = [version for _, version in answers]
    assert versions[0] == registered["version"]
    assert versions[-20:] == [new] * 20
    assert set(versions) == {registered["version"], new}


def _serving_again(app: App, version: str, record: dict) -> None:
    """Wait until both workers answer with ``version`` again: the app is the session's, shared with the tests that
    run after this one in the same process (the V2 client's asked for version 1 right after, and got a worker that
    had not polled yet)."""
    deadline, streak = time.monotonic() + 60, 0
    while streak < 10 and time.monotonic() < deadline:
        answer = requests.post(f"{app.url}/api/v1/predict", json=record, timeout=60).json()
        streak = streak + 1 if answer.get("model_version") == version else 0
        time.sleep(0.1 if streak else 0.5)
    assert streak >= 10, f"the app did not go back to version {version} within 60 s"
