"""Helpers shared by the benchmarks: repo on sys.path, a private MLflow server, the machine's state,
the app's memory."""

from __future__ import annotations

import os
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

from tests.support.servers import free_port, mlflow_command, running  # noqa: E402


@contextmanager
def private_mlflow() -> Iterator[str]:
    """A real MLflow server, as in local mode, in a temporary folder on a free port."""
    with tempfile.TemporaryDirectory(prefix="heartrisk-bench-") as tmp:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with running(mlflow_command(Path(tmp), port), health=f"{url}/health", log=Path(tmp) / "mlflow.log"):
            yield url


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


def app_memory(pid: int) -> dict[str, float]:
    """RSS and PSS in MiB of a process and its children (the gunicorn master plus its workers)."""
    import psutil

    master = psutil.Process(pid)
    procs = [master, *master.children(recursive=True)]
    rss = pss = 0
    for proc in procs:
        try:
            info = proc.memory_full_info()
        except psutil.Error:
            continue
        rss += info.rss
        pss += getattr(info, "pss", 0)
    return {"processes": len(procs), "rss_mib": round(rss / 2**20, 1), "pss_mib": round(pss / 2**20, 1)}
