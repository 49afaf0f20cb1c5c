"""Real servers for the tests: subprocesses on free loopback ports, stopped at the end."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import pytest
import requests

from heartrisk.config import BIN


def require(condition: bool, reason: str) -> None:
    """Skip on a laptop that lacks a tool; fail in CI (HEARTRISK_REQUIRE_ALL=1), never skip there."""
    if condition:
        return
    if os.environ.get("HEARTRISK_REQUIRE_ALL") == "1":
        pytest.fail(f"required in CI but missing: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports: all held open until each is chosen, so none comes twice."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def wait_http(
    url: str,
    *,
    timeout: float,
    proc: subprocess.Popen | None = None,
    log: Path | None = None,
    verify: str | bool = True,
) -> None:
    """Wait until ``url`` answers 2xx; fail early with the log if the process died. ``verify``: as requests'
    (a CA file for an https server whose certificate a test made)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"process for {url} exited with {proc.returncode}:\n{tail}")
        try:
            if requests.get(url, timeout=2, verify=verify).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise TimeoutError(f"{url} did not answer within {timeout} s:\n{tail}")


def stop(proc: subprocess.Popen, *, grace: float = 15) -> None:
    """SIGTERM the process group, then SIGKILL what is left."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@contextmanager
def running(
    cmd: Sequence[str],
    *,
    health: str,
    log: Path,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    wait: bool = True,
    verify: str | bool = True,
) -> Iterator[subprocess.Popen]:
    """Run ``cmd`` in its own process group until the block ends; ``wait=False`` returns at once (servers
    that start side by side: the caller waits for ``health`` with :func:`wait_http`). ``verify``: the CA
    of an https ``health``."""
    handle = log.open("ab")
    proc = subprocess.Popen(
        list(cmd),
        stdout=handle,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    try:
        if wait:
            wait_http(health, timeout=timeout, proc=proc, log=log, verify=verify)
        yield proc
    finally:
        stop(proc)
        handle.close()


def mlflow_command(state: Path, port: int) -> list[str]:
    """The same MLflow server command as local mode, on a given port and state folder."""
    return [
        str(BIN / "heartrisk"),
        "mlflow-server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--state-dir",
        str(state),
    ]
