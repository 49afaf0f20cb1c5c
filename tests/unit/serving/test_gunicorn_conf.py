"""gunicorn's config file, loaded by path in a fresh process as gunicorn loads it."""

from __future__ import annotations

import subprocess
import sys

from tests.support.paths import ROOT

CONF = ROOT / "src" / "heartrisk" / "serving" / "gunicorn_conf.py"


def test_the_master_imports_mlflows_client_for_its_workers_and_starts_no_thread(tmp_path) -> None:
    """Imported before the fork, MLflow's client is shared by every worker; onnxruntime (which starts
    threads) must wait for the worker."""
    code = (
        "import runpy, sys, threading\n"
        f"runpy.run_path({str(CONF)!r})\n"
        "print(sorted(m for m in ('heartrisk.registry', 'mlflow', 'onnxruntime') if m in sys.modules),"
        " threading.active_count())"
    )
    env = {
        "HEARTRISK_STATE_DIR": str(tmp_path),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "PATH": "/usr/bin",
    }
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.stdout.strip().splitlines()[-1] == "['heartrisk.registry', 'mlflow'] 1", done.stdout + done.stderr
