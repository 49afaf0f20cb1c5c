"""The local stack as ``make up`` runs it: honcho on the repository's Procfile (every program of it, the
bootstrap included), each service on a free loopback port, all state in one folder; stopped as ``make down``
stops it, by the real ``make down``.

What differs from the Makefile's ``up`` recipe, and why: the ports (free ones, so that a stack a person
runs is not disturbed), a trained first champion from a small search (``HEARTRISK_TRIALS`` and the CV as the
other stack tests have them), schedules that do not fall during a test (a scheduled monitoring run or purge
would change what a test counts), a Prefect database migrated once per test run (``seed_prefect_database``), and
honcho reads an empty environment file instead of the repository's ``.env``: honcho gives ``.env``
precedence over the environment, so a person's ``.env`` would otherwise move the stack under test onto
their own ports or state folder. The recipe's own steps are repeated here: the folder made with mode 0700,
honcho's pid in ``<state>/stack.pid`` (what ``make down`` and ``heartrisk restore`` read).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from heartrisk.config import BIN
from tests.support.paths import ROOT
from tests.support.prefect_stack import seed_prefect_database
from tests.support.servers import free_ports, stop, wait_http

UP = "HeartRisk is up:"  # the bootstrap's banner, once the app serves the champion and every deployment is there
FAILED = "HeartRisk started, but"
QUIET_CRON = "0 0 29 2 *"  # the deployments' schedules: midnight on 29 February only
# Set by the test session for its own servers (conftest's session fixtures): not the stack's business.
NOT_INHERITED = re.compile(r"HEARTRISK_(?!REQUIRE_ALL$).*|MLFLOW_TRACKING_URI|PREFECT_API_URL|PROMETHEUS_MULTIPROC_DIR")


@dataclass(frozen=True)
class LocalStack:
    """Where one local stack lives: ``env`` points a ``heartrisk`` command (backup, restore) or a Prefect or
    MLflow client at it, as the stack's own ``.env`` would."""

    state: Path
    env: dict[str, str]
    app: str
    mlflow: str
    prefect_api: str
    evidently: str

    @property
    def pid_file(self) -> Path:
        return self.state / "stack.pid"


def local_stack(state: Path) -> LocalStack:
    """A stack's settings: free ports for the five servers, ``state`` as its folder, its keys inside it."""
    mlflow, prefect, app, evidently, smtp = free_ports(5)
    urls = {
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow}",
        "PREFECT_API_URL": f"http://127.0.0.1:{prefect}/api",
    }
    env = {
        **{name: value for name, value in os.environ.items() if not NOT_INHERITED.fullmatch(name)},
        **urls,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # the recipe's PATH: the Procfile's `heartrisk`
        "HEARTRISK_STATE_DIR": str(state),
        "HEARTRISK_MLFLOW_PORT": str(mlflow),
        "HEARTRISK_PREFECT_PORT": str(prefect),
        "HEARTRISK_APP_PORT": str(app),
        "HEARTRISK_EVIDENTLY_PORT": str(evidently),
        "HEARTRISK_SMTP_SINK_PORT": str(smtp),
        "HEARTRISK_TRIALS": "5",
        "HEARTRISK_FOLDS": "3",
        "HEARTRISK_CV_REPEATS": "1",
        "HEARTRISK_MONITOR_CRON": QUIET_CRON,
        "HEARTRISK_PURGE_CRON": QUIET_CRON,
    }
    return LocalStack(state, env, f"http://127.0.0.1:{app}", urls["MLFLOW_TRACKING_URI"], urls["PREFECT_API_URL"],
                      f"http://127.0.0.1:{evidently}")  # fmt: skip


@contextmanager
def make_up(
    stack: LocalStack, log: Path, tmp_path_factory: pytest.TempPathFactory, *, timeout: float = 900
) -> Iterator[subprocess.Popen]:
    """``make up``'s recipe on this stack; yields honcho's process once the bootstrap says the stack is up (on a
    fresh folder: once the first champion is trained and served). Leaving the block stops the stack with
    ``make down`` if it still runs."""
    stack.state.mkdir(parents=True, exist_ok=True)
    stack.state.chmod(0o700)
    if not (stack.state / "prefect" / "prefect.db").exists():
        seed_prefect_database(stack.state / "prefect", tmp_path_factory)
    empty_env = log.with_suffix(".env")
    empty_env.write_text("")
    with log.open("ab") as out:
        honcho = subprocess.Popen(
            [str(BIN / "honcho"), "start", "-f", "Procfile", "-e", str(empty_env)],
            cwd=ROOT,
            env=stack.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack.pid_file.write_text(f"{honcho.pid}\n")
    try:
        _wait_until_up(honcho, log, timeout)
        wait_http(f"{stack.app}/readyz", timeout=60, proc=honcho, log=log)
        wait_http(f"{stack.evidently}/api/version", timeout=120, proc=honcho, log=log)
        yield honcho
    finally:
        if honcho.poll() is None:
            try:
                make_down(stack, honcho)
            finally:
                _kill_what_is_left(honcho)


def make_down(stack: LocalStack, honcho: subprocess.Popen, *, timeout: float = 120) -> int:
    """The real ``make down`` on this stack's folder; returns honcho's exit code. This process started honcho,
    so it reaps it here while ``make down`` waits for the pid to go (``make up``'s shell does that)."""
    env = {"PATH": os.environ.get("PATH", ""), "HEARTRISK_STATE_DIR": str(stack.state)}
    down = subprocess.Popen(["make", "-s", "-C", str(ROOT), "down"], env=env, stdout=subprocess.PIPE, text=True)
    code = honcho.wait(timeout)
    out, _ = down.communicate(timeout=30)
    stack.pid_file.unlink(missing_ok=True)  # make up's shell removes it once honcho has exited
    assert down.returncode == 0 and "HeartRisk stopped." in out, out
    return code


def _wait_until_up(honcho: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if UP in text:
            return
        if FAILED in text or honcho.poll() is not None:
            raise RuntimeError(f"the local stack did not come up (honcho: {honcho.poll()}):\n{text[-6000:]}")
        time.sleep(1)
    raise TimeoutError(f"the local stack was not up within {timeout} s:\n{log.read_text(errors='replace')[-6000:]}")


def _kill_what_is_left(honcho: subprocess.Popen) -> None:
    """After a ``make down`` that failed: honcho starts each program in a session of its own, so its process
    group is not enough; its descendants, then honcho."""
    if honcho.poll() is not None:
        return
    with suppress(psutil.NoSuchProcess):
        for child in psutil.Process(honcho.pid).children(recursive=True):
            with suppress(psutil.NoSuchProcess):
                child.kill()
    stop(honcho)
