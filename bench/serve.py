"""Serving speed: this app under gunicorn next to `mlflow models serve` and the in-process floor.

    python bench/serve.py [--workers 2] [--seconds 10]

One run, one registered model (a calibrated RBF SVC, the shape training usually picks, logged to a
private MLflow server started here). Measured with wrk (keep-alive, one record per request) at
concurrency 1 and 8:
  - this app: `heartrisk serve` (gunicorn gthread workers, prediction log ON, one SQLite row per record);
  - the peer: `mlflow models serve --env-manager local` with the same number of workers, same model;
  - the floor: `predict_proba` called in this process (no HTTP), one record at a time.
Also the batch endpoint: 10 000 records in one request (median of 5). Prints ratios and the issue's
targets (>= 1.5x the peer's throughput, p99 < 15 ms at concurrency 8, 10 000 rows < 0.5 s); the last
line is one JSON object. The load generator shares the machine's cores with the servers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import requests

from _common import ROOT, free_port, private_mlflow, running

BIN = Path(sys.executable).parent
MODEL = "HeartRiskServeBench"
BATCH_ROWS = 10_000


def register_model(tracking_uri: str) -> Any:
    """Fit the benchmark model on heart.csv (a calibrated RBF SVC), register it, point `champion` at it."""
    from tests.support.models import fit_pipeline, register

    pipeline = fit_pipeline({"kernel": "rbf", "C": 1.0, "gamma": 0.01}, folds=5)
    register(tracking_uri, MODEL, pipeline)
    return pipeline


def wrk(url: str, body: str, *, connections: int, seconds: int) -> dict[str, float]:
    """Throughput and latency percentiles from wrk with a POST of ``body``."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\nwrk.headers["Content-Type"] = "application/json"\n'
        )
    threads = min(connections, 2)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name, url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)

    def ms(label: str) -> float:
        found = re.search(rf"^\s+{label}\s+([\d.]+)([a-z]+)\s*$", out, re.M)
        if found is None:
            raise RuntimeError(f"no {label} latency in the output of wrk:\n{out}")
        return float(found.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[found.group(2)]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "errors": (int(errors.group(1)) if errors else 0) + (sum(map(int, socket.groups())) if socket else 0),
    }


def in_process(call, *, concurrency: int, seconds: float) -> dict[str, float]:
    """The floor: ``call()`` in ``concurrency`` threads of this process, no HTTP."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    stop = time.perf_counter() + seconds

    def loop(mine: list[float]) -> None:
        while (start := time.perf_counter()) < stop:
            call()
            mine.append(time.perf_counter() - start)

    pool = [threading.Thread(target=loop, args=(mine,)) for mine in latencies]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    flat = np.array([x for mine in latencies for x in mine]) * 1000
    return {
        "rps": len(flat) / seconds,
        "p50_ms": float(np.percentile(flat, 50)),
        "p99_ms": float(np.percentile(flat, 99)),
        "requests": len(flat),
        "errors": 0,
    }


def batch_seconds(url: str, payload: Any, *, repeat: int = 5) -> list[float]:
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = requests.post(url, json=payload, timeout=120)
        timings.append(time.perf_counter() - start)
        response.raise_for_status()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers = mlflow models serve workers")
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/serve.py needs wrk (apt-get install wrk)")

    from heartrisk.schema import FEATURE_NAMES, as_matrix
    from heartrisk.serving.model_holder import LoadedModel

    records = pd.read_csv(ROOT / "data" / "heart.csv")[list(FEATURE_NAMES)].to_dict("records")  # typed per column
    record = records[0]
    batch = (records * (BATCH_ROWS // len(records) + 1))[:BATCH_ROWS]
    results: dict[str, dict[str, dict[str, float]]] = {}

    with private_mlflow() as tracking, tempfile.TemporaryDirectory(prefix="heartrisk-bench-serve-") as tmp:
        pipeline = register_model(tracking)
        one_row = pd.DataFrame([record], columns=list(FEATURE_NAMES))
        ours_in_process = LoadedModel.of(MODEL, "1", pipeline)
        for c in (1, 8):
            results.setdefault("predict_proba (DataFrame)", {})[f"c{c}"] = in_process(
                lambda: pipeline.predict_proba(one_row), concurrency=c, seconds=args.seconds / 2
            )
            results.setdefault("app's predict path", {})[f"c{c}"] = in_process(
                lambda: ours_in_process.predict(as_matrix([record])), concurrency=c, seconds=args.seconds / 2
            )

        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": tracking,
            "HEARTRISK_MODEL_NAME": MODEL,
            "HEARTRISK_STATE_DIR": str(Path(tmp) / "state"),
            "HEARTRISK_PREDICTIONS_DB": str(Path(tmp) / "predictions.sqlite"),
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # mlflow models serve execs `uvicorn`
        }
        port = free_port()
        app_url = f"http://127.0.0.1:{port}"
        serve = [str(BIN / "heartrisk"), "serve", "--port", str(port), "--workers", str(args.workers)]
        with running(serve, health=f"{app_url}/readyz", log=Path(tmp) / "app.log", env=env, timeout=240):
            url = f"{app_url}/api/v1/predict"
            wrk(url, json.dumps(record), connections=8, seconds=2)  # warm-up
            results["this app (gunicorn)"] = {
                f"c{c}": wrk(url, json.dumps(record), connections=c, seconds=args.seconds) for c in (1, 8)
            }
            ours_batch = batch_seconds(url, batch)
        from heartrisk.predlog import open_log

        logged = open_log(Path(tmp) / "predictions.sqlite").count()

        port = free_port()
        peer_url = f"http://127.0.0.1:{port}"
        peer = [
            str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{MODEL}@champion", "--env-manager", "local",
            "-h", "127.0.0.1", "-p", str(port), "-w", str(args.workers),
        ]  # fmt: skip
        with running(peer, health=f"{peer_url}/ping", log=Path(tmp) / "peer.log", env=env, timeout=240):
            url = f"{peer_url}/invocations"
            body = json.dumps({"dataframe_records": [record]})
            wrk(url, body, connections=8, seconds=2)
            results["mlflow models serve"] = {
                f"c{c}": wrk(url, body, connections=c, seconds=args.seconds) for c in (1, 8)
            }
            peer_batch = batch_seconds(url, {"dataframe_records": batch})

    print(f"\nServing benchmark: {args.workers} workers each, wrk keep-alive, one record per request, {args.seconds} s")
    print(f"{'':28} {'c':>2} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, by_c in results.items():
        for c, r in by_c.items():
            print(f"{name:28} {c[1:]:>2} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['errors']:7d}")
    ours, peer_r = results["this app (gunicorn)"], results["mlflow models serve"]
    ratios = {c: ours[c]["rps"] / peer_r[c]["rps"] for c in ("c1", "c8")}
    floor = results["predict_proba (DataFrame)"]["c1"]["rps"]
    print(
        f"\nthroughput, this app / mlflow models serve: c1 {ratios['c1']:.2f}x, c8 {ratios['c8']:.2f}x (target >= 1.5x)"
    )
    print(f"throughput, this app c8 / in-process predict_proba c1: {ours['c8']['rps'] / floor:.2f}x")
    print(f"p99 at concurrency 8: {ours['c8']['p99_ms']:.1f} ms (target < 15 ms)")
    print(
        f"batch of {BATCH_ROWS} rows: this app {statistics.median(ours_batch):.3f} s median, {max(ours_batch):.3f} max"
        f" (target < 0.5 s); mlflow models serve {statistics.median(peer_batch):.3f} s"
    )
    print(f"prediction log rows written by this app (warm-up, wrk runs, batches): {logged}")
    print(f"machine: {os.cpu_count()} cores, load average at end {os.getloadavg()[0]:.1f}")
    print(
        json.dumps(
            {
                "workers": args.workers,
                "results": results,
                "throughput_ratio_vs_mlflow": ratios,
                "batch_seconds": {"app": ours_batch, "mlflow_models_serve": peer_batch},
                "logged_rows": logged,
            }
        )
    )


if __name__ == "__main__":
    main()
