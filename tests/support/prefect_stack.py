"""A real Prefect server and process worker for the tests, with the project's deployments applied, and what
its server holds about the training runs (what the Prefect UI shows)."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import pytest

from heartrisk import names
from heartrisk.config import BIN
from tests.support.commands import heartrisk, last_json
from tests.support.servers import free_port, running, stop, wait_http

MONITOR_CRON = "30 5 * * 1"  # the session stack's monitoring schedule, given as HEARTRISK_MONITOR_CRON


@dataclass
class PrefectStack:
    """Where the test stack runs; ``env`` points a CLI subprocess (or a flow) at it."""

    api_url: str
    env: dict[str, str]
    state_dir: Path
    worker_log: Path
    bootstrap: dict
    _exits: ExitStack
    _server: object  # the running server process

    @property
    def server_pid(self) -> int:
        return self._server.pid

    @contextmanager
    def server_stopped(self) -> Iterator[None]:
        """Stop the Prefect server for the block, then start it again on the same port and state."""
        stop(self._server)
        try:
            yield
        finally:
            log = self.state_dir / "prefect-server.log"
            self._server = self._exits.enter_context(_server(self.api_url, self.env, log))


def seed_prefect_database(home: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Give a Prefect home (``PREFECT_HOME``) an empty SQLite database already at Prefect's latest migration.

    Migrating a fresh database costs Prefect's server about 12 s of CPU and 17 s before it answers;
    the tests' servers start from a copy of one database migrated once per test run (kept in the run's
    temporary folder, common to the xdist workers, which take turns on a lock file). The server still
    runs its migration check at start-up, and finds nothing to do.
    """
    shared = tmp_path_factory.getbasetemp()
    shared = shared.parent if os.environ.get("PYTEST_XDIST_WORKER") else shared  # each worker has a folder in it
    template = shared / f"prefect-{version('prefect')}.db"
    with open(shared / "prefect-template.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not template.is_file():
            scratch = Path(tempfile.mkdtemp(dir=shared))
            env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_DATABASE_CONNECTION_URL"}
            command = [str(BIN / "prefect"), "server", "database", "upgrade", "-y"]
            subprocess.run(
                command, env={**env, "PREFECT_HOME": str(scratch)}, capture_output=True, check=True, timeout=300
            )
            (scratch / "prefect.db").replace(template)
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, home / "prefect.db")


@contextmanager
def start_prefect_stack(
    state: Path,
    base_env: Callable[[], dict[str, str]],
    tmp_path_factory: pytest.TempPathFactory,
    bootstrap_args: tuple[str, ...] = (),
) -> Iterator[PrefectStack]:
    """Start ``heartrisk prefect-server`` and ``heartrisk worker`` on free ports, then ``heartrisk bootstrap``.

    The bootstrap applies prefect.yaml and trains a first champion through the training deployment, as on
    a fresh ``make up``; flows run by the worker train with few trials (5 trials, 3 folds, 1 repeat).
    As under ``make up``, the processes start side by side: the Prefect server starts while ``base_env()``
    (MLflow's settings) starts MLflow, and the worker while the bootstrap deploys; both wait for the
    server themselves.
    """
    port, worker_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    own = {
        "HEARTRISK_STATE_DIR": str(state),
        "HEARTRISK_PREFECT_PORT": str(port),
        "PREFECT_API_URL": api_url,
        "PREFECT_HOME": str(state / "prefect"),
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_WORKER_WEBSERVER_HOST": "127.0.0.1",
        "PREFECT_WORKER_WEBSERVER_PORT": str(worker_port),
        "HEARTRISK_TRIALS": "5",
        "HEARTRISK_FOLDS": "3",
        "HEARTRISK_CV_REPEATS": "1",  # no test here checks the repeats; unit tests do
    }
    seed_prefect_database(state / "prefect", tmp_path_factory)
    with ExitStack() as stack:
        server = stack.enter_context(_server(api_url, own, state / "prefect-server.log", wait=False))
        env = {**base_env(), **own}
        worker_log = state / "worker.log"
        health = f"http://127.0.0.1:{worker_port}/health"
        command = [str(BIN / "heartrisk"), "worker", "--healthcheck"]
        worker = stack.enter_context(running(command, health=health, log=worker_log, env=env, wait=False))
        done = heartrisk("bootstrap", *bootstrap_args, env=env)
        if done.returncode != 0:
            raise RuntimeError(f"heartrisk bootstrap failed:\n{done.stdout}\n{done.stderr[-4000:]}")
        wait_http(health, timeout=180, proc=worker, log=worker_log)  # it ran the bootstrap's training
        outcome = last_json(done)
        try:
            yield PrefectStack(api_url, env, state, worker_log, outcome, stack, server)
        finally:
            _send_what_this_process_logged()
            # The worker first: a server restarted by server_stopped sits above it in the stack, and a worker
            # that outlives its server spends 7 s trying to report that it stopped.
            stop(worker)


@contextmanager
def prefect_server_alone(state: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Prefect server alone (no worker, no deployment) on a free port, for flows a test runs in its own
    process; this process's Prefect client points at it for the block. Yields its API URL."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {"HEARTRISK_STATE_DIR": str(state), "HEARTRISK_PREFECT_PORT": str(port), "PREFECT_API_URL": api_url,
           "PREFECT_HOME": str(state / "prefect")}  # fmt: skip
    seed_prefect_database(state / "prefect", tmp_path_factory)
    with _server(api_url, env, state / "prefect-server.log"), temporary_settings({PREFECT_API_URL: api_url}):
        try:
            yield api_url
        finally:
            _send_what_this_process_logged()


def _send_what_this_process_logged() -> None:
    """Flows run in the test process (``heartrisk_here``) leave their log lines and events to Prefect's
    background senders: send them while the server is up. At the process's exit the server was gone, and
    the senders printed "Error logging to API" after their retries."""
    if "prefect.logging.handlers" not in sys.modules:  # no flow ran here
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10, at_exit=False)
    EventsWorker.drain_all(timeout=10, at_exit=False)


def _server(api_url: str, env: dict[str, str], log: Path, *, wait: bool = True):
    command = [str(BIN / "heartrisk"), "prefect-server"]
    return running(command, health=f"{api_url}/health", log=log, env=env, timeout=180, wait=wait)


def task_runs_of_last_training(stack: PrefectStack) -> list[str]:
    """The stages of the newest completed training run, as the Prefect UI lists its task runs, in order."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: stack.api_url}), get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[names.TRAIN_FLOW])),
            flow_run_filter=FlowRunFilter(state={"type": FlowRunFilterStateType(any_=[StateType.COMPLETED])}),
            sort=FlowRunSort.END_TIME_DESC,
            limit=1,
        )
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": [run.id]}))
    ordered = sorted(tasks, key=lambda t: t.start_time)
    assert all(t.state_type == StateType.COMPLETED and t.total_run_time is not None for t in ordered)
    return [t.name.rsplit("-", 1)[0] for t in ordered]


def training_summaries(stack: PrefectStack) -> list[str]:
    """The markdown of the training-summary artifacts, newest first."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: stack.api_url}), get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["training-summary"])),
            sort=ArtifactSort.CREATED_DESC,
        )
    return [str(artifact.data) for artifact in found]
