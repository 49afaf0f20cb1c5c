"""Serving speed: this app next to `mlflow models serve`, Seldon MLServer and the in-process floor.

    python bench/serve.py [--workers 2] [--seconds 10]

One run, one fitted pipeline (a calibrated RBF SVC, the shape training usually picks), registered with
its ONNX export in a private MLflow server started here. Measured with wrk (keep-alive, one record per
request, the same settings for all) at concurrency 1 and 8:
  - this app: `heartrisk serve` (gunicorn gthread workers, prediction log ON, one SQLite row per
    record), served by ONNX Runtime, through /api/v1/predict and then, in the same app run, through the
    Open Inference Protocol's /v2/models/heartrisk/infer (one FP32 tensor of shape [1, 13]); then the
    same app serving the same pipeline registered without an export (scikit-learn), for the gain and
    for the memory the new runtime costs;
  - peer 1: `mlflow models serve --env-manager local` with the same number of workers, same model;
  - peer 2: Seldon MLServer 1.7.1 (`mlserver-sklearn`, V2 protocol, predict_proba) with that many
    parallel workers, in a virtual environment of its own (bench/_mlserver.py), same pipeline; and,
    at concurrency 8, MLServer with inference in its one HTTP process (no inter-process queue), in
    case that layout is the faster one for a model this cheap;
  - the floor: the app's own predict call (ONNX Runtime, one record, no HTTP) in this process, and
    scikit-learn's predict_proba on a one-row DataFrame for comparison.
Also a 10 000-record batch in one request (body encoded once; median of 5), the answers' agreement with
scikit-learn, the app's memory (RSS and PSS of master + workers after the load) with each runtime, and
the machine's load average at start and end. The load generator shares the machine's cores with the
servers. Targets (issue 14): p99 < 15 ms at concurrency 8; throughput at 8 >= 3x `mlflow models serve`
and >= 1.5x MLServer; 10 000 rows < 0.1 s; memory growth from the new runtime <= 100 MB; (issue 37)
/v2 infer's throughput at 8 within 10 % of /api/v1/predict's. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import requests

import _mlserver
from _common import ROOT, Memory, app_server, count_rows, free_port, machine, private_mlflow, running, wrk
from heartrisk.config import BIN

MODEL = "HeartRiskServeBench"
SKLEARN_MODEL = "HeartRiskServeBenchSklearn"  # the same pipeline registered without an ONNX export
BATCH_ROWS = 10_000
JSON = {"Content-Type": "application/json"}
V1, V2 = "this app, onnxruntime", "this app, onnxruntime, /v2 infer"


def v2_body(records: list[dict[str, Any]]) -> str:
    """An Open Inference Protocol request: the records as one FP32 tensor of shape [N, 13], values as typed."""
    flat = [value for record in records for value in record.values()]
    tensor = {"name": "input-0", "shape": [len(records), len(records[0])], "datatype": "FP32", "data": flat}
    return json.dumps({"inputs": [tensor]})


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


def batch_seconds(url: str, body: bytes, *, repeat: int = 5) -> list[float]:
    """Wall time of one POST of an already encoded body, ``repeat`` times (keep-alive)."""
    timings = []
    with requests.Session() as session:
        for _ in range(repeat):
            start = time.perf_counter()
            response = session.post(url, data=body, headers=JSON, timeout=120)
            timings.append(time.perf_counter() - start)
            response.raise_for_status()
    return timings


def measure(url: str, body: str, *, seconds: int, levels: tuple[int, ...] = (1, 8)) -> dict[str, dict[str, float]]:
    wrk(url, body, connections=8, seconds=2)  # warm-up
    return {f"c{c}": wrk(url, body, connections=c, seconds=seconds) for c in levels}


class Bench:
    """One run: the model, the records, and every figure measured, by row of the table."""

    def __init__(self, args: argparse.Namespace, tracking: str, tmp: Path) -> None:
        from heartrisk.schema import FEATURE_NAMES

        self.args, self.tracking, self.tmp = args, tracking, tmp
        frame = pd.read_csv(ROOT / "data" / "heart.csv")[list(FEATURE_NAMES)]
        self.records = frame.to_dict("records")  # typed per column
        self.record = self.records[0]
        self.batch = (self.records * (BATCH_ROWS // len(self.records) + 1))[:BATCH_ROWS]
        self.rows = [[float(v) for v in r.values()] for r in self.batch]
        self.results: dict[str, dict[str, dict[str, float]]] = {}
        self.batches: dict[str, list[float]] = {}
        self.memory: dict[str, Memory] = {}
        self.answers: dict[str, float] = {}
        self.extra: dict[str, Any] = {}
        self.pipeline = self.register()

    def register(self) -> Any:
        """Fit the benchmark pipeline, register it with its ONNX export (and once without), alias champion."""
        from tests.support.models import fit_pipeline, register

        pipeline = fit_pipeline({"kernel": "rbf", "C": 1.0, "gamma": 0.01}, folds=5)
        register(self.tracking, MODEL, pipeline)
        register(self.tracking, SKLEARN_MODEL, pipeline, onnx=False)
        return pipeline

    def floors(self) -> None:
        from tests.support.models import training_rows

        from heartrisk import export
        from heartrisk.schema import FEATURE_NAMES, as_matrix
        from heartrisk.scoring import LoadedModel

        graph = export.export(self.pipeline, training_rows()).graph
        ours = dataclasses.replace(LoadedModel.of(MODEL, "1", self.pipeline), onnx=export.OnnxModel(graph))
        one_row = pd.DataFrame([self.record], columns=list(FEATURE_NAMES))
        seconds = self.args.seconds / 2
        for c in (1, 8):
            self.results.setdefault("floor: onnxruntime in-process (app's predict)", {})[f"c{c}"] = in_process(
                lambda: ours.predict(as_matrix([self.record])), concurrency=c, seconds=seconds
            )
            self.results.setdefault("scikit-learn predict_proba in-process", {})[f"c{c}"] = in_process(
                lambda: self.pipeline.predict_proba(one_row), concurrency=c, seconds=seconds
            )

    def app(self, model: str, name: str, *, levels: tuple[int, ...]) -> None:
        """`heartrisk serve` following ``model``'s champion: wrk, the batch, the memory after the load."""
        from heartrisk.config import get_settings

        tmp = self.tmp / name.replace(" ", "-")
        tmp.mkdir()
        poll = get_settings().app.model_poll_seconds
        with app_server(tmp, self.tracking, model, workers=self.args.workers, poll=poll, timeout=240) as app:
            ready = requests.get(f"{app.internal_url}/readyz", timeout=30).json()
            url = f"{app.url}/api/v1/predict"
            self.results[name] = measure(url, json.dumps(self.record), seconds=self.args.seconds, levels=levels)
            self.memory[name] = app.memory()
            self.batches[name] = batch_seconds(url, json.dumps(self.batch).encode())
            self.answers[name] = requests.post(url, json=self.record, timeout=30).json()["probability"]
            if name == V1:  # the same app, the same run: the Open Inference Protocol's path
                url = f"{app.url}/v2/models/heartrisk/infer"
                self.results[V2] = measure(url, v2_body([self.record]), seconds=self.args.seconds, levels=levels)
                self.batches[V2] = batch_seconds(url, v2_body(self.batch).encode())
                answer = requests.post(url, data=v2_body([self.record]), headers=JSON, timeout=30).json()
                self.answers[V2] = answer["outputs"][0]["data"][0]
            self.extra[name] = {"runtime": ready["runtime"], "logged_rows": count_rows(app.log)}

    def mlflow_peer(self) -> None:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {"MLFLOW_TRACKING_URI": self.tracking, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        env["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"  # the peer loads with MLflow's own loader; ours never does
        peer = [
            str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{MODEL}@champion", "--env-manager", "local",
            "-h", "127.0.0.1", "-p", str(port), "-w", str(self.args.workers),
        ]  # fmt: skip
        with running(peer, health=f"{base}/ping", log=self.tmp / "mlflow-peer.log", env=env, timeout=240):
            url = f"{base}/invocations"
            name = "peer: mlflow models serve"
            self.results[name] = measure(
                url, json.dumps({"dataframe_records": [self.record]}), seconds=self.args.seconds
            )
            self.batches[name] = batch_seconds(url, json.dumps({"dataframe_records": self.batch}).encode())
            answer = requests.post(url, json={"dataframe_records": [self.record]}, timeout=30).json()
            self.answers[name] = answer["predictions"][0][1]

    def mlserver_peer(self, workers: int, *, levels: tuple[int, ...] = (1, 8)) -> None:
        """MLServer with ``workers`` parallel inference processes (0: inference in its HTTP process)."""
        bin_dir = _mlserver.environment()
        port, grpc, metrics = free_port(), free_port(), free_port()
        folder = _mlserver.model_folder(
            self.tmp / f"mlserver-{workers}", self.pipeline, port=port, grpc_port=grpc, metrics_port=metrics,
            workers=workers,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        health = f"{base}/v2/models/{_mlserver.MODEL}/ready"
        log = self.tmp / f"mlserver-{workers}.log"
        with running(_mlserver.command(bin_dir, folder), health=health, log=log, timeout=240):
            url = f"{base}/v2/models/{_mlserver.MODEL}/infer"
            name = mlserver_name(workers)
            one = json.dumps(_mlserver.body([self.rows[0]]))
            self.results[name] = measure(url, one, seconds=self.args.seconds, levels=levels)
            self.batches[name] = batch_seconds(url, json.dumps(_mlserver.body(self.rows)).encode())
            self.answers[name] = _mlserver.probabilities(requests.post(url, data=one, headers=JSON, timeout=30).json())[
                0
            ]


def mlserver_name(workers: int) -> str:
    if workers:
        return f"peer: MLServer {_mlserver.VERSION}, {workers} parallel workers"
    return f"peer: MLServer {_mlserver.VERSION}, inference in its HTTP process"


def report(bench: Bench, started: dict[str, Any], ended: dict[str, Any]) -> None:
    from heartrisk.config import get_settings

    args, results = bench.args, bench.results
    threads = get_settings().app.threads
    print(f"\nServing benchmark: {args.workers} workers each (this app: x {threads} threads), wrk keep-alive,")
    print(f"one record per request, {args.seconds} s per cell, the load generator on the same cores")
    print(f"{'':46} {'c':>2} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, by_c in results.items():
        for c, r in by_c.items():
            print(f"{name:46} {c[1:]:>2} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['errors']:7d}")
    ours = results[V1]["c8"]
    mlflow_c8 = results["peer: mlflow models serve"]["c8"]
    mlserver_c8 = results[mlserver_name(args.workers)]["c8"]
    mlserver_best = max(results[name]["c8"]["rps"] for name in results if name.startswith("peer: MLServer"))
    floor = results["floor: onnxruntime in-process (app's predict)"]
    print(f"\np99 at concurrency 8: {ours['p99_ms']:.1f} ms (target < 15 ms)")
    print(f"throughput at 8, this app / mlflow models serve: {ours['rps'] / mlflow_c8['rps']:.2f}x (target >= 3x)")
    print(f"throughput at 8, this app / MLServer: {ours['rps'] / mlserver_c8['rps']:.2f}x (target >= 1.5x)")
    print(f"throughput at 8, this app / MLServer's best layout here: {ours['rps'] / mlserver_best:.2f}x")
    print(f"throughput at 8, this app / in-process floor at 1: {ours['rps'] / floor['c1']['rps']:.3f}")
    print(f"throughput at 8, /v2 infer / /api/v1/predict: {results[V2]['c8']['rps'] / ours['rps']:.2f} (target >= 0.9)")
    for name, timings in bench.batches.items():
        print(f"batch of {BATCH_ROWS} rows, {name}: {statistics.median(timings):.3f} s median, {max(timings):.3f} max")
    print("(target for this app with onnxruntime < 0.1 s)")
    reference = bench.pipeline.predict_proba(pd.DataFrame([bench.record]))[0, 1]
    for name, answer in bench.answers.items():
        print(f"probability of the first record, {name}: {answer:.7f} (scikit-learn in-process {reference:.7f})")
    for name, memory in bench.memory.items():
        print(f"memory after the load, {name}: RSS {memory.rss_mib} MiB, PSS {memory.pss_mib} MiB")
    onnx_mem, sk_mem = bench.memory[V1], bench.memory["this app, scikit-learn"]
    print(
        f"memory the new runtime adds (target <= 100 MB): RSS {onnx_mem.rss_mib - sk_mem.rss_mib:+.1f} MiB, "
        f"PSS {onnx_mem.pss_mib - sk_mem.pss_mib:+.1f} MiB"
    )
    print(f"runtime and prediction-log rows per app run: {bench.extra}")
    print(f"machine at start: {started}\nmachine at end:   {ended}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="workers of the app and of each peer")
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/serve.py needs wrk (apt-get install wrk)")
    started = machine()
    print(f"machine at start: {started}", flush=True)
    _mlserver.environment()  # made before anything is timed, when missing
    with private_mlflow() as tracking, tempfile.TemporaryDirectory(prefix="heartrisk-bench-serve-") as tmp:
        bench = Bench(args, tracking, Path(tmp))
        bench.floors()
        bench.app(MODEL, V1, levels=(1, 8))
        bench.app(SKLEARN_MODEL, "this app, scikit-learn", levels=(8,))
        bench.mlflow_peer()
        bench.mlserver_peer(args.workers)
        bench.mlserver_peer(0, levels=(8,))
    ended = machine()
    report(bench, started, ended)
    print(
        json.dumps(
            {
                "workers": args.workers,
                "results": bench.results,
                "batch_seconds": bench.batches,
                "answers": bench.answers,
                "memory_mib": {name: dataclasses.asdict(memory) for name, memory in bench.memory.items()},
                "apps": bench.extra,
                "machine_at_start": started,
                "machine_at_end": ended,
            }
        )
    )


if __name__ == "__main__":
    main()
