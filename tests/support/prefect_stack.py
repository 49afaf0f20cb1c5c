"""A real Prefect server and process worker for the tests, with the project's deployments applied."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from heartrisk.config import BIN
from tests.support.commands import heartrisk, last_json
from tests.support.servers import free_port, running


@dataclass(frozen=True)
class PrefectStack:
    """Where the test stack runs; ``env`` points a CLI subprocess (or a flow) at it."""

    api_url: str
    env: dict[str, str]
    state_dir: Path
    worker_log: Path
    bootstrap: dict
    server: subprocess.Popen  # the Prefect server process, for tests that stop and restart it
    server_command: tuple[str, ...]


@contextmanager
def start_prefect_stack(
    state: Path, base_env: dict[str, str], bootstrap_args: tuple[str, ...] = ("--no-train",)
) -> Iterator[PrefectStack]:
    """Start ``heartrisk prefect-server`` and ``heartrisk worker`` on free ports, then apply prefect.yaml.

    The deployments are applied by ``heartrisk bootstrap`` (by default ``--no-train``; a deployment
    whose flow file does not exist yet is skipped); flows run by the worker train with few trials.
    """
    port, worker_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {
        **base_env,
        "HEARTRISK_STATE_DIR": str(state),
        "HEARTRISK_PREFECT_PORT": str(port),
        "PREFECT_API_URL": api_url,
        "PREFECT_HOME": str(state / "prefect"),
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_WORKER_WEBSERVER_HOST": "127.0.0.1",
        "PREFECT_WORKER_WEBSERVER_PORT": str(worker_port),
        "HEARTRISK_TRIALS": "5",
        "HEARTRISK_FOLDS": "3",
    }
    server_command = (str(BIN / "heartrisk"), "prefect-server")
    with ExitStack() as stack:
        server = stack.enter_context(
            running(
                list(server_command),
                health=f"{api_url}/health",
                log=state / "prefect-server.log",
                env=env,
                timeout=180,
            )
        )
        worker_log = state / "worker.log"
        stack.enter_context(
            running(
                [str(BIN / "heartrisk"), "worker", "--healthcheck"],
                health=f"http://127.0.0.1:{worker_port}/health",
                log=worker_log,
                env=env,
                timeout=180,
            )
        )
        done = heartrisk("bootstrap", *bootstrap_args, env=env)
        if done.returncode != 0:
            raise RuntimeError(f"heartrisk bootstrap failed:\n{done.stdout}\n{done.stderr[-4000:]}")
        outcome = last_json(done)
        yield PrefectStack(
            api_url=api_url,
            env=env,
            state_dir=state,
            worker_log=worker_log,
            bootstrap=outcome,
            server=server,
            server_command=server_command,
        )
