"""Docker for the stack tests (tests/stack/, run by tests/stack/run.sh): compose commands and containers.

The engine is whichever ``docker`` answers (run.sh exports DOCKER_HOST when it started its own), compose
its CLI plugin. Nothing here starts or stops an engine.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from typing import Any

from tests.support.paths import ROOT

BASE = ("docker-compose.yaml",)
SCALE = ("docker-compose.yaml", "docker-compose.scale.yaml")


def compose(
    *args: str, env: dict[str, str], files: Sequence[str] = BASE, env_file: str | None = None, timeout: float = 900
) -> subprocess.CompletedProcess:
    """``docker compose [--env-file F] -f ... ARGS`` in the repository, as a user types it."""
    command = ["docker", "compose", *(["--env-file", env_file] if env_file else [])]
    for name in files:
        command += ["-f", name]
    return subprocess.run(
        [*command, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)


def inspect(container: str) -> dict[str, Any]:
    """``docker inspect`` of one container."""
    done = docker("inspect", container)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)[0]


def address(container: str, network: str = "default") -> str:
    """The container's IP address on one network of its project (the app replicas are on `serving` only)."""
    networks = inspect(container)["NetworkSettings"]["Networks"]
    return next(net["IPAddress"] for name, net in networks.items() if name.endswith(f"_{network}"))


def environment(container: str) -> dict[str, str]:
    """The environment the container was started with."""
    return dict(item.split("=", 1) for item in inspect(container)["Config"]["Env"])
