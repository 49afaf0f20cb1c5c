"""Model trust on the local layout: a real MLflow server, the app under gunicorn, the monitor's reference scoring.

Someone with a valid MLflow client but without the signing key registers a version whose model file is a
pickle that writes a file when it is loaded, and moves the champion alias to it; then tries a signature
copied from the champion, one made with their own key, and a signed version with its file replaced. Each
time the app keeps answering with the previous champion, ``/readyz`` and ``/metrics`` name the refused
version and why, the monitor's reference scoring refuses it, and the file is never written. A control at
the end loads the pickle with MLflow's own loader, pickle allowed, and the file appears: the payload is live.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from mlflow.tracking import MlflowClient

from heartrisk import signing
from heartrisk.config import get_settings
from heartrisk.data import load_csv
from heartrisk.monitoring.reference import read_reference
from heartrisk.registry import SKOPS_FILE
from heartrisk.schema import FEATURE_NAMES
from tests.support import intruder
from tests.support.app import App, app_server
from tests.support.models import register
from tests.support.paths import REFERENCE

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:X does not have valid feature names")]

MODEL = "HeartRiskTrustTest"


@pytest.fixture(scope="module")
def marker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The file the intruder's pickle creates when it is loaded: it must never exist."""
    return tmp_path_factory.mktemp("intruder") / "owned"


@pytest.fixture(scope="module")
def champion(mlflow_server: str) -> str:
    """Version 1, registered and signed as training registers it: the champion that must keep answering."""
    return register(mlflow_server, MODEL)


@pytest.fixture(scope="module")
def app(mlflow_server: str, champion: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    with app_server(tmp_path_factory.mktemp("trust-app"), mlflow_server, MODEL, workers=2, poll=0.5) as served:
        yield served


def readiness_once_refused(app: App, version: str, timeout: float = 60) -> dict:
    """/readyz once every worker has looked at the alias since it moved to ``version`` (each refuses on its own)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = requests.get(f"{app.internal_url}/readyz", timeout=10).json()
        metrics = requests.get(f"{app.internal_url}/metrics", timeout=10).text
        if (body.get("refused") or {}).get("version") == version and f'version="{version}"}} 1.0' in metrics:
            return body
        time.sleep(0.3)
    raise AssertionError(f"version {version} not refused within {timeout} s: {body}")


def monitor_settings(mlflow_server: str, state: Path):
    base = get_settings()
    mlflow = dataclasses.replace(base.mlflow, tracking_uri=mlflow_server, model_name=MODEL)
    return dataclasses.replace(base, mlflow=mlflow, state_dir=state)


def assert_refused_everywhere(app: App, mlflow_server: str, version: str, kind: str, marker: Path, tmp: Path) -> None:
    body = readiness_once_refused(app, version)
    assert body["ready"] is True and body["model_version"] == "1", body
    assert (body["refused"]["model"], body["refused"]["kind"]) == (MODEL, kind), body
    assert body["problem"] == f"{MODEL} version {version} refused: {body['refused']['reason']}"
    row = load_csv(REFERENCE).iloc[0]
    record = {name: row[name].item() for name in FEATURE_NAMES}
    answer = requests.post(f"{app.url}/api/v1/predict", json=record, timeout=30)
    assert answer.status_code == 200 and answer.json()["model_version"] == "1"
    with pytest.raises(signing.Untrusted) as refused:  # the monitor's step that scores the reference
        read_reference.fn(str(REFERENCE), monitor_settings(mlflow_server, tmp), True)
    assert refused.value.kind == kind and str(refused.value).startswith(f"{MODEL} version {version}: ")
    assert not marker.exists()


def test_an_unsigned_pickle_is_refused_by_the_app_and_the_monitor_and_never_loaded(
    app: App, mlflow_server: str, marker: Path, tmp_path: Path
) -> None:
    version = intruder.register_pickle(mlflow_server, MODEL, marker)
    assert_refused_everywhere(app, mlflow_server, version, "unsigned", marker, tmp_path)


def test_a_signature_copied_from_the_champion_or_made_with_another_key_is_refused(
    app: App, mlflow_server: str, champion: str, marker: Path, tmp_path: Path
) -> None:
    # The alias moves only once the forged tag is on the version: a poll in between would (rightly) refuse it
    # as unsigned, and the app does not look at a refused version again.
    copied = intruder.register_pickle(mlflow_server, MODEL, marker, champion=False)
    intruder.copy_signature(mlflow_server, MODEL, champion, copied)
    intruder.move_alias(mlflow_server, MODEL, copied)
    assert_refused_everywhere(app, mlflow_server, copied, "bad_signature", marker, tmp_path)
    own = intruder.register_pickle(mlflow_server, MODEL, marker, champion=False)
    intruder.sign_with_own_key(mlflow_server, MODEL, own)
    intruder.move_alias(mlflow_server, MODEL, own)
    assert_refused_everywhere(app, mlflow_server, own, "other_key", marker, tmp_path)


def test_a_signed_version_whose_file_was_replaced_is_refused(
    app: App, mlflow_server: str, marker: Path, tmp_path: Path
) -> None:
    version = register(mlflow_server, MODEL, champion=False)
    intruder.replace_file(mlflow_server, MODEL, version, SKOPS_FILE, intruder.pickle_bytes(marker))
    MlflowClient(mlflow_server).set_registered_model_alias(MODEL, "champion", version)
    assert_refused_everywhere(app, mlflow_server, version, "changed", marker, tmp_path)


def test_back_on_a_signed_version_nothing_is_refused_and_the_payload_was_live_all_along(
    app: App, mlflow_server: str, champion: str, marker: Path
) -> None:
    """Last in this module: the alias back on the champion clears the refusal; then the control."""
    MlflowClient(mlflow_server).set_registered_model_alias(MODEL, "champion", champion)
    deadline = time.monotonic() + 30
    while (body := requests.get(f"{app.internal_url}/readyz", timeout=10).json())[
        "refused"
    ] and time.monotonic() < deadline:
        time.sleep(0.3)
    assert (body["refused"], body["problem"], body["model_version"]) == (None, None, "1")
    assert not marker.exists()
    pickled = intruder.register_pickle(mlflow_server, MODEL, marker, champion=False)
    code = f"import mlflow.sklearn; mlflow.sklearn.load_model('models:/{MODEL}/{pickled}')"
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"}
    subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=300, check=False)
    assert marker.exists(), "the intruder's pickle did not run when loaded the unsafe way: the test proves nothing"
