"""The ``heartrisk`` command as users run it, in a child process, and its JSON line."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from heartrisk.config import BIN


def heartrisk(
    *args: str, env: dict[str, str], timeout: float = 600, stdin: str | None = None, unset: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """Run ``heartrisk ARGS`` with ``env`` over this environment, minus ``unset``; the output is kept."""
    merged = {key: value for key, value in {**os.environ, **env}.items() if key not in unset}
    return subprocess.run(
        [str(BIN / "heartrisk"), *args],
        env=merged,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def last_json(done: subprocess.CompletedProcess) -> dict[str, Any]:
    """The command's result: the JSON object on its last stdout line."""
    assert done.stdout.strip(), done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
