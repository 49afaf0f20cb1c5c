"""Session fixtures: a real MLflow server, a trained champion, a Prefect stack, PostgreSQL and an S3 store,
each started once, when a test first needs it; and the prediction log on each backend."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import pytest

from tests.support.commands import heartrisk, last_json
from tests.support.models import CHAMPION_MODEL as MODEL_NAME
from tests.support.postgres import Postgres, postgres_server
from tests.support.prefect_stack import PrefectStack, start_prefect_stack
from tests.support.s3 import ObjectStore, seaweedfs
from tests.support.servers import free_port, mlflow_command, running


@pytest.fixture(scope="session", autouse=True)
def _quiet_prefect(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep Prefect's local state and telemetry out of the user's home during tests."""
    home = tmp_path_factory.mktemp("prefect-home")
    os.environ.setdefault("PREFECT_HOME", str(home))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    # Flows called without PREFECT_API_URL start a temporary server; on a busy 2-core machine 20 s is short.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` (SQLite + local artifacts), as in local mode, on a free port."""
    state = tmp_path_factory.mktemp("mlflow-state")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(mlflow_command(state, port), health=f"{url}/health", log=state / "mlflow.log", timeout=180):
        yield url
    shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def mlflow_env(mlflow_server: str) -> Iterator[dict[str, str]]:
    """Point this process (and child processes given this env) at the test MLflow server."""
    env = {"MLFLOW_TRACKING_URI": mlflow_server, "HEARTRISK_MODEL_NAME": MODEL_NAME}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def champion(prefect_stack: PrefectStack) -> dict:
    """Train once (a few trials) with ``heartrisk train``, so the registry has a champion; returns its summary.

    In a child process, as a user runs it, reporting to the session's Prefect server (no temporary one).
    """
    args = ("train", "--trials", "8", "--folds", "3", "--seed", "7", "--experiment", "test-champion")
    done = heartrisk(*args, env={**prefect_stack.env, "HEARTRISK_MODEL_NAME": MODEL_NAME})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = last_json(done)
    assert summary["promoted"] is True
    return summary


@pytest.fixture(scope="session")
def prefect_stack(tmp_path_factory: pytest.TempPathFactory, mlflow_env: dict[str, str]) -> Iterator[PrefectStack]:
    """A real Prefect server + process worker on pool zoompool, deployments of prefect.yaml applied."""
    with start_prefect_stack(tmp_path_factory.mktemp("prefect-stack"), mlflow_env) as stack:
        yield stack


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A real PostgreSQL cluster (``initdb`` + ``pg_ctl``) on a free port; tests create their own databases."""
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def object_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObjectStore]:
    """A real S3 store (SeaweedFS ``weed mini``) on free loopback ports, credentials of its own."""
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as store:
        yield store


@pytest.fixture(params=["sqlite", "postgresql"])
def log_target(request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh, empty prediction log on each backend: a SQLite path, or a new database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "predictions.sqlite")
    server: Postgres = request.getfixturevalue("postgres")
    return server.create_database(f"log_{uuid.uuid4().hex[:12]}")
