"""Helpers shared by the benchmarks: repo on sys.path, a private MLflow server, timing."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
