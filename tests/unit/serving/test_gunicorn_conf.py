"""gunicorn's config file, loaded by path in a fresh process as gunicorn loads it."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.paths import ROOT

CONF = ROOT / "src" / "heartrisk" / "serving" / "gunicorn_conf.py"
WATCHED = ("heartrisk.registry", "mlflow", "skops.io", "sklearn", "onnxruntime")


def test_the_master_imports_what_loading_a_model_needs_for_its_workers_and_starts_no_thread(tmp_path) -> None:
    """Imported before the fork, MLflow's client, skops and scikit-learn are shared by every worker;
    onnxruntime (which starts threads) must wait for the worker."""
    code = (
        "import runpy, sys, threading\n"
        f"runpy.run_path({str(CONF)!r})\n"
        f"print(sorted(m for m in {WATCHED!r} if m in sys.modules), threading.active_count())"
    )
    env = {
        "HEARTRISK_STATE_DIR": str(tmp_path),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "PATH": "/usr/bin",
        **{name: os.environ[name] for name in ("PYTHONPATH",) if name in os.environ},  # a checkout's own src first
    }
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    shared = "['heartrisk.registry', 'mlflow', 'sklearn', 'skops.io'] 1"
    assert done.stdout.strip().splitlines()[-1] == shared, done.stdout + done.stderr
