"""Local stack: seconds from `make up` (venv present, empty state) to the first prediction, and memory.

Starts `make up` on free ports with a fresh state folder, posts the form until it shows a result,
lets the stack settle, then sums resident memory (RSS, and PSS which counts shared pages once) per
Procfile service; then starts it again on the same state (runs and champion kept) and times that.
Peer, measured in the same run: a default `mlflow server` (no options) alone.
Usage: .venv/bin/python bench/stack_up.py [--no-peer]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

from _common import ROOT, Memory, free_port, running, stop, tree_memory
from heartrisk.config import BIN

FORM = {
    "age": "63", "sex": "1", "cp": "3", "trtbps": "145", "chol": "233", "fbs": "1", "restecg": "0",
    "thalachh": "150", "exng": "0", "oldpeak": "2.3", "slp": "0", "caa": "0", "thall": "1",
}  # fmt: skip
SERVICES = {
    "bootstrap": "bootstrap",
    "mlflow": "mlflow-server|mlflow server",
    "prefect server": "prefect-server|prefect server",
    "worker": "heartrisk worker|prefect worker",
    "mail": "smtp-sink|aiosmtpd",
    "app": "gunicorn|heartrisk serve|heartrisk-app",
}


def service_of(proc: psutil.Process) -> str:
    """The Procfile service a child of honcho runs, recognised by its command lines."""
    line = " ".join(" ".join(p.cmdline()) for p in [proc, *proc.children(recursive=True)])
    return next((name for name, pattern in SERVICES.items() if re.search(pattern, line)), line[:40])


def measure_stack(state: Path, settle: float) -> dict[str, object]:
    """One `make up` on ``state``; stopped again (as `make down` does) once measured."""
    ports = {name: free_port() for name in ("mlflow", "prefect", "app", "smtp")}
    env = {
        **os.environ,
        "HEARTRISK_STATE_DIR": str(state),
        "HEARTRISK_MLFLOW_PORT": str(ports["mlflow"]),
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{ports['mlflow']}",
        "HEARTRISK_PREFECT_PORT": str(ports["prefect"]),
        "HEARTRISK_APP_PORT": str(ports["app"]),
        "HEARTRISK_SMTP_SINK_PORT": str(ports["smtp"]),
    }
    log_path = state.parent / f"{state.name}-make-up.log"
    log = log_path.open("wb")
    print(f"make up started at {time.strftime('%H:%M:%S')}")
    started = time.monotonic()
    proc = subprocess.Popen(
        ["make", "up"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{ports['app']}/"
    first = None
    try:
        while time.monotonic() - started < 600 and proc.poll() is None:
            try:
                page = requests.post(url, data=FORM, timeout=10)
                if page.ok and 'id="model-version"' in page.text:
                    first = time.monotonic() - started
                    break
            except requests.RequestException:
                pass
            time.sleep(0.5)
        if first is None:
            raise RuntimeError(f"no prediction; see {log_path}")
        time.sleep(settle)
        honcho = next(p for p in psutil.Process(proc.pid).children(recursive=True) if "honcho" in " ".join(p.cmdline()))
        per_service = {service_of(child): tree_memory(child.pid) for child in honcho.children()}
        timeline = [line for line in log_path.read_text().splitlines() if "[bootstrap]" in line]
        return {"first_prediction_s": first, "services": per_service, "timeline": timeline}
    finally:
        stop(proc, grace=30)
        log.close()
        log_path.unlink()


def measure_default_mlflow() -> tuple[Memory, float]:
    """A default `mlflow server`: its memory once settled, and seconds to answer."""
    with tempfile.TemporaryDirectory(prefix="mlflow-default-") as tmp:
        state, port = Path(tmp), free_port()
        command = [str(BIN / "mlflow"), "server", "--port", str(port)]
        command += ["--backend-store-uri", f"sqlite:///{state / 'db.sqlite'}"]
        command += ["--artifacts-destination", str(state / "mlartifacts")]  # not ./mlartifacts in the repository
        started = time.monotonic()
        with running(command, health=f"http://127.0.0.1:{port}/health", log=state / "mlflow.log", timeout=300) as proc:
            seconds = time.monotonic() - started
            time.sleep(15)
            return tree_memory(proc.pid), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-peer", action="store_true", help="skip the default mlflow server measurement")
    parser.add_argument("--settle", type=float, default=20, help="seconds to wait after the first prediction")
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="heartrisk-up-"))
    try:
        result = measure_stack(state, args.settle)
        again = measure_stack(state, 0)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    print("\n".join(result["timeline"]))
    print(f"make up -> first prediction through the form: {result['first_prediction_s']:.1f} s (target < 90 s)")
    print(f"{'service':16} {'RSS MiB':>8} {'PSS MiB':>8} {'procs':>6}")
    for name, memory in sorted(result["services"].items()):
        print(f"{name:16} {memory.rss_mib:8.0f} {memory.pss_mib:8.0f} {memory.processes:6d}")
    total_rss = sum(memory.rss_mib for memory in result["services"].values())
    total_pss = sum(memory.pss_mib for memory in result["services"].values())
    print(f"{'total':16} {total_rss:8.0f} {total_pss:8.0f}   (target RSS < 1536 MB)")
    print(f"second `make up`, same state (champion kept): first prediction in {again['first_prediction_s']:.1f} s")
    if not args.no_peer:
        peer, seconds = measure_default_mlflow()
        print(f"peer: default `mlflow server` alone: RSS {peer.rss_mib:.0f} MiB, PSS {peer.pss_mib:.0f} MiB, "
              f"{peer.processes} processes,")  # fmt: skip
        ratio = total_rss / peer.rss_mib
        print(f"      {seconds:.1f} s to answer; whole local stack / default mlflow RSS = {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
