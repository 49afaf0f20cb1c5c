"""Session fixtures: a real MLflow server, a trained champion, a Prefect stack, PostgreSQL and an S3 store,
each started once, when a test first needs it; and the prediction log on each backend.

MLflow and the model helpers are imported in the fixtures that use them: pytest-xdist's controller, which
runs no test, loads this file too, and the workers start only once it has (about 3 s of imports saved).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.app import Served, app_server
from tests.support.postgres import Postgres, postgres_server
from tests.support.prefect_stack import MONITOR_CRON, PrefectStack, start_prefect_stack
from tests.support.s3 import ObjectStore, seaweedfs
from tests.support.servers import free_port, mlflow_command, running
from tests.support.xdist_groups import finish_unneeded, place_in_groups

SERVED_MODEL = "HeartRiskServedTest"


@pytest.fixture(scope="session", autouse=True)
def _quiet_prefect(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep Prefect's local state out of the user's home during tests (telemetry is off: see heartrisk/__init__)."""
    home = tmp_path_factory.mktemp("prefect-home")
    os.environ.setdefault("PREFECT_HOME", str(home))


@pytest.fixture(scope="session", autouse=True)
def _model_keys(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One model key pair per test process, for every training, app and monitor it runs or starts: versions the
    tests register are signed as training signs them (``tests.support.models.register``), and the servers a
    test process starts inherit its environment. A test of the keys themselves sets its own files."""
    from heartrisk.signing import ensure_pair

    folder = tmp_path_factory.mktemp("model-keys")
    keys = {
        "HEARTRISK_MODEL_SIGNING_KEY_FILE": folder / "signing.pem",
        "HEARTRISK_MODEL_VERIFY_KEY_FILE": folder / "verify.pem",
    }
    ensure_pair(*keys.values())
    os.environ.update({name: str(path) for name, path in keys.items()})


@pytest.fixture(scope="session")
def mlflow_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test MLflow server's state folder: its database ``mlflow.db`` and its ``artifacts``, as in local mode."""
    return tmp_path_factory.mktemp("mlflow-state")


@pytest.fixture(scope="session")
def mlflow_server(mlflow_state: Path) -> Iterator[str]:
    """A real ``mlflow server`` (SQLite + local artifacts), as in local mode, on a free port."""
    state = mlflow_state
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(mlflow_command(state, port), health=f"{url}/health", log=state / "mlflow.log", timeout=180):
        yield url
    shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def mlflow_env(mlflow_server: str) -> Iterator[dict[str, str]]:
    """Point this process (and child processes given this env) at the test MLflow server."""
    from tests.support.models import CHAMPION_MODEL

    env = {"MLFLOW_TRACKING_URI": mlflow_server, "HEARTRISK_MODEL_NAME": CHAMPION_MODEL}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def prefect_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectStack]:
    """A real Prefect server + process worker on pool zoompool, set up by ``heartrisk bootstrap`` as on a
    fresh ``make up``: pool, deployments, e-mail block, and a first champion trained through Prefect
    (tests/integration/test_stack.py checks that outcome). MLflow starts while the Prefect server does."""

    def env() -> dict[str, str]:
        return {**request.getfixturevalue("mlflow_env"), "HEARTRISK_MONITOR_CRON": MONITOR_CRON}

    with start_prefect_stack(tmp_path_factory.mktemp("prefect-stack"), env, tmp_path_factory) as stack:
        yield stack


@pytest.fixture(scope="session")
def champion(prefect_stack: PrefectStack, mlflow_server: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The bootstrap's champion: its ``heartrisk train`` JSON summary, as the training run logged it.

    Later trainings through the deployment use the same data, parameters and seed, so they register
    nothing new (an identical retrain) and this stays the champion.
    """
    from mlflow.tracking import MlflowClient

    from tests.support.models import CHAMPION_MODEL

    version = prefect_stack.bootstrap["champion_version"]
    assert prefect_stack.bootstrap["training_state"] == "COMPLETED" and version, prefect_stack.bootstrap
    client = MlflowClient(mlflow_server)
    run_id = client.get_model_version(CHAMPION_MODEL, version).run_id
    folder = tmp_path_factory.mktemp("champion")
    return json.loads(Path(client.download_artifacts(run_id, "promotion_decision.json", str(folder))).read_text())


@pytest.fixture(scope="session")
def served(
    mlflow_server: str, mlflow_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """One app under gunicorn (2 workers, alias polled every second) for the serving, fuzz and browser
    tests: a fitted pipeline registered as version 1 of its own model, so moving that alias disturbs no
    other test."""
    from tests.support.models import fit_pipeline, register

    pipeline = fit_pipeline()
    version = register(mlflow_server, SERVED_MODEL, pipeline)
    with app_server(tmp_path_factory.mktemp("served-app"), mlflow_server, SERVED_MODEL) as app:
        yield Served(app, pipeline, version, SERVED_MODEL)


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


SHARED = ("prefect_stack", "served")  # session servers that are slow to start: one per worker at most
OWN_STACK = "test_monitor.py"  # the longest chain of stack tests: a group, so a stack, of its own
# Modules whose module-scoped servers several of their tests share (the scale-out stack on PostgreSQL and
# S3 with its training; Prefect's telemetry control server; the model-trust test's app, whose alias its tests
# move in turn): spread over two workers, each worker started them again. The telemetry module joins the stack
# group one of its tests needs. The restore drill starts a whole local stack of its own twice: it joins the
# scale-out group, so that the two largest stacks run one after the other on one worker, never side by side.
WHOLE_MODULE = {
    "test_scale_out.py": "scale_out",
    "test_restore_drill.py": "scale_out",
    "test_telemetry.py": "prefect_stack",
    "test_model_trust.py": "trust",
}


def xdist_group(item: pytest.Item) -> str | None:
    """The tests that use one slow session server run on one worker, so it starts once there; the monitor
    tests form a second Prefect-stack group, which another worker runs at the same time on its own stack."""
    if item.path.name in WHOLE_MODULE:
        return WHOLE_MODULE[item.path.name]
    shared = next((name for name in SHARED if name in item.fixturenames), None)
    return "monitor" if shared == "prefect_stack" and item.path.name == OWN_STACK else shared


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``make test`` runs ``-n 2 --dist loadgroup``) each group runs on one worker;
    the tests in no group spread out."""
    place_in_groups(config, items, xdist_group)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Once a worker has run the last test that needs a slow session server, stop it there and then: idle,
    the app and the Prefect stack polled for minutes while the other worker's tests waited for the CPU."""
    yield
    finish_unneeded(item, nextitem, SHARED)
