"""What the benchmarks share: the repository on ``sys.path`` and the test harness it holds, a private MLflow
server, wrk, and the machine's state.

The app, the load and the memory are measured the way the tests do it, with ``tests/support``
(re-exported here: a script runs as ``python bench/<name>.py`` and finds ``tests`` only once this module
has put the repository on the path).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.app import App, app_server  # noqa: E402
from tests.support.load import Load, Sample  # noqa: E402
from tests.support.memory import Memory, peak_rss_mib, tree_memory  # noqa: E402
from tests.support.predlog import count as count_rows  # noqa: E402
from tests.support.servers import free_port, mlflow_command, running, stop  # noqa: E402

__all__ = [
    "ROOT",
    "App",
    "Load",
    "Memory",
    "Sample",
    "app_server",
    "count_rows",
    "free_port",
    "machine",
    "peak_rss_mib",
    "private_mlflow",
    "running",
    "stop",
    "tree_memory",
    "wrk",
]


@contextmanager
def private_mlflow() -> Iterator[str]:
    """A real MLflow server, as in local mode, in a temporary folder on a free port; and a model key pair of
    its own there, named in this process's environment for the block, so that the versions a benchmark
    registers are signed and the apps it starts (which inherit the environment) verify them."""
    from heartrisk.signing import ensure_pair

    with tempfile.TemporaryDirectory(prefix="heartrisk-bench-") as tmp:
        keys = {
            "HEARTRISK_MODEL_SIGNING_KEY_FILE": str(Path(tmp) / "keys" / "model-signing.pem"),
            "HEARTRISK_MODEL_VERIFY_KEY_FILE": str(Path(tmp) / "keys" / "model-verify.pem"),
        }
        ensure_pair(*map(Path, keys.values()))
        saved = {name: os.environ.get(name) for name in keys}
        os.environ.update(keys)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        try:
            with running(mlflow_command(Path(tmp), port), health=f"{url}/health", log=Path(tmp) / "mlflow.log"):
                yield url
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def wrk(url: str, body: str, *, connections: int, seconds: int) -> dict[str, float]:
    """Throughput and latency percentiles of POSTs of ``body`` with wrk (keep-alive).

    The throughput meter of bench/serve.py and bench/predlog.py: a client in C costs the shared cores
    little, where Python clients (:class:`Load`) would take much of them and cap what the servers show.
    """
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\nwrk.headers["Content-Type"] = "application/json"\n'
        )
    threads = min(connections, 2)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name, url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(_found(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": _milliseconds("50%", out),
        "p99_ms": _milliseconds("99%", out),
        "requests": int(_found(r"(\d+) requests in", out).group(1)),
        "errors": (int(errors.group(1)) if errors else 0) + (sum(map(int, socket.groups())) if socket else 0),
    }


def _found(pattern: str, out: str) -> re.Match[str]:
    found = re.search(pattern, out, re.M)
    if found is None:
        raise RuntimeError(f"no match for {pattern!r} in the output of wrk:\n{out}")
    return found


def _milliseconds(label: str, out: str) -> float:
    found = _found(rf"^\s+{label}\s+([\d.]+)([a-z]+)\s*$", out)
    return float(found.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[found.group(2)]


def machine() -> dict[str, Any]:
    """What a reader needs to judge a figure: cores, load average now, the commit measured."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"], capture_output=True
    )
    return {
        "cores": os.cpu_count(),
        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "commit": commit.stdout.strip() + ("+changes" if dirty.stdout.strip() else ""),
        "python": sys.version.split()[0],
    }
