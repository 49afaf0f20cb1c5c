"""The prediction log on PostgreSQL next to SQLite: appends, the monitor's 1M-row read, and the app.

    python bench/predlog.py [--seconds 10] [--rows 1000000] [--rounds 2] [--workers 2]
    python bench/predlog.py --against COMMIT [--rounds 6]   # this checkout's app against another commit's

One run, both backends, a real PostgreSQL started here (Debian's initdb + pg_ctl, fsync on, as in
production) and a SQLite file in WAL mode (the embedded default):
  - append throughput through the log's own interface: single records from 1 thread and from 8 threads
    (the app's 2 workers x 4 threads), and batches of 10 000 records (one COPY / one transaction);
  - the monitor's read: ``window()`` of a window of ``--rows`` rows with the monitor's settings
    (HEARTRISK_DRIFT_WINDOW_DAYS, HEARTRISK_DRIFT_MAX_ROWS, HEARTRISK_DRIFT_SEED; median of 3; target < 2 s);
  - the app: ``heartrisk serve`` with each log, one record per request, wrk at concurrency 8, ``--rounds``
    times alternating SQLite and PostgreSQL; target: PostgreSQL within 10 %.
Prints the figures, the ratios PostgreSQL / SQLite and, last, one JSON object.

With ``--against COMMIT`` only the app is measured, with each log, alternating this checkout's code and
COMMIT's (a temporary git worktree, chosen through PYTHONPATH) round by round on the same PostgreSQL and
model: an A/B of a change to the request path, the ratio this / COMMIT per backend.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from _common import ROOT, app_server, private_mlflow, wrk

MODEL = "HeartRiskPredlogBench"
BATCH = 10_000
READ_TARGET_SECONDS = 2.0
APP_TARGET_RATIO = 0.9


def records(rows: int, seed: int = 42) -> np.ndarray:
    """``rows`` records of heart.csv, resampled (seeded), in schema order."""
    from heartrisk.data import load_csv
    from heartrisk.schema import FEATURE_NAMES

    base = load_csv(ROOT / "data" / "heart.csv")[list(FEATURE_NAMES)].to_numpy(dtype=float)
    return base[np.random.default_rng(seed).integers(0, len(base), rows)]


def single_appends(target: str, *, threads: int, seconds: float, **log_options: Any) -> float:
    """Records per second, one record per append, from ``threads`` threads sharing one log object
    (``log_options`` go to ``open_log``: bench/sqlite_sync.py's level of disk syncs)."""
    from heartrisk.predlog import open_log

    log = open_log(target, **log_options)
    log.problem()  # migrate and connect before the clock starts
    row = records(1)
    done = [0] * threads
    stop = time.perf_counter() + seconds

    def loop(n: int) -> None:
        while time.perf_counter() < stop:
            log.append(row, [0.5], [1], model_version="bench", request_id=f"single-{n}")
            done[n] += 1

    pool = [threading.Thread(target=loop, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    log.close()
    return sum(done) / seconds


def batch_appends(target: str, *, batches: int) -> float:
    """Records per second, in batches of 10 000 (one request of the API's maximum size each)."""
    from heartrisk.predlog import open_log

    log = open_log(target)
    batch = records(BATCH, seed=7)
    labels, probabilities = [1] * BATCH, [0.5] * BATCH
    log.problem()
    start = time.perf_counter()
    for n in range(batches):
        log.append(batch, probabilities, labels, model_version="bench", request_id=f"batch-{n}")
    elapsed = time.perf_counter() - start
    log.close()
    return batches * BATCH / elapsed


def window_read(target: str, rows: int) -> dict[str, Any]:
    """Fill a fresh log to ``rows`` rows, then time the monitor's read of its window (3 times)."""
    from heartrisk.config import get_settings
    from heartrisk.predlog import open_log

    settings = get_settings()
    log = open_log(target)
    batch = records(BATCH, seed=11)
    for n in range(rows // BATCH):
        log.append(batch, [0.5] * BATCH, [1] * BATCH, model_version="bench", request_id=f"fill-{n}")
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        window = log.window(days=settings.drift.window_days, max_rows=settings.drift.max_rows, seed=settings.drift.seed)
        timings.append(time.perf_counter() - start)
        assert window.rows == rows, window.rows
    log.close()
    return {"rows": rows, "compared": len(window.frame), "seconds": timings, "median": statistics.median(timings)}


def app_throughput(tracking: str, target: str, tmp: Path, *, workers: int, seconds: int) -> dict[str, float]:
    """The app at concurrency 8, one record per request, logging to ``target``."""
    from heartrisk.config import get_settings
    from heartrisk.schema import FEATURE_NAMES

    record = dict(zip(FEATURE_NAMES, records(1)[0].tolist(), strict=True))
    folder = Path(tempfile.mkdtemp(dir=tmp, prefix="app-"))
    poll = get_settings().app.model_poll_seconds
    quiet = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    started = app_server(folder, tracking, MODEL, workers=workers, poll=poll, log_target=target, env=quiet, timeout=240)
    with started as app:
        body, url = json.dumps(record), f"{app.url}/api/v1/predict"
        wrk(url, body, connections=8, seconds=2)  # warm-up: pools, prepared statements
        return wrk(url, body, connections=8, seconds=seconds)


def _logs(postgres: Any, tmp: Path, name: str) -> dict[str, str]:
    """A fresh, empty log of each backend."""
    return {"sqlite": str(tmp / f"{name}.sqlite"), "postgresql": postgres.create_database(name)}


def measure_log(postgres: Any, tmp: Path, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {"sqlite": {}, "postgresql": {}}
    for backend, target in _logs(postgres, tmp, "single1").items():
        results[backend]["single_1_thread_rows_per_s"] = single_appends(target, threads=1, seconds=args.seconds / 2)
    for backend, target in _logs(postgres, tmp, "single8").items():
        results[backend]["single_8_threads_rows_per_s"] = single_appends(target, threads=8, seconds=args.seconds / 2)
    for backend, target in _logs(postgres, tmp, "batches").items():
        results[backend]["batch_10k_rows_per_s"] = batch_appends(target, batches=10)
    for backend, target in _logs(postgres, tmp, "window").items():
        results[backend]["window_read"] = window_read(target, args.rows)
    return results


@contextmanager
def served_model() -> Iterator[str]:
    """A private MLflow server holding the model the app serves in every run; yields its URL."""
    with private_mlflow() as tracking:
        from tests.support.models import fit_pipeline, register

        register(tracking, MODEL, fit_pipeline({"kernel": "rbf", "C": 1.0, "gamma": 0.01}, folds=5))
        yield tracking


def measure_app(postgres: Any, tmp: Path, args: argparse.Namespace) -> dict[str, list[dict[str, float]]]:
    app: dict[str, list[dict[str, float]]] = {"sqlite": [], "postgresql": []}
    with served_model() as tracking:
        for n in range(args.rounds):
            for backend, target in _logs(postgres, tmp, f"app{n}").items():
                app[backend].append(app_throughput(tracking, target, tmp, workers=args.workers, seconds=args.seconds))
    return app


def measure_against(postgres: Any, tmp: Path, args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    """req/s of the app with each log, this checkout's code and ``args.against``'s, alternating round by round."""
    checkout = tmp / "against"
    git = ["git", "-C", str(ROOT)]
    subprocess.run([*git, "worktree", "add", "--detach", str(checkout), args.against], check=True, capture_output=True)
    sources = {"this": str(ROOT / "src"), args.against: str(checkout / "src")}
    rps: dict[str, dict[str, list[float]]] = {code: {"sqlite": [], "postgresql": []} for code in sources}
    try:
        with served_model() as tracking:
            for n in range(args.rounds):
                for i, (code, src) in list(enumerate(sources.items()))[:: 1 if n % 2 == 0 else -1]:
                    os.environ["PYTHONPATH"] = src  # `heartrisk serve` imports the package and its gunicorn config
                    for backend, target in _logs(postgres, tmp, f"ab{n}code{i}").items():
                        run = app_throughput(tracking, target, tmp, workers=args.workers, seconds=args.seconds)
                        rps[code][backend].append(run["rps"])
                        print(f"  round {n + 1} {code:>10} {backend:10} {run['rps']:.0f} req/s", flush=True)
    finally:
        os.environ.pop("PYTHONPATH", None)
        subprocess.run([*git, "worktree", "remove", "--force", str(checkout)], check=False, capture_output=True)
    return rps


def report_against(rps: dict[str, dict[str, list[float]]], args: argparse.Namespace) -> None:
    this, other = rps["this"], rps[args.against]
    print(f"\nThe app, this checkout against {args.against}, {args.rounds} rounds of {args.seconds} s, alternating:")
    ratios = {}
    for backend in ("sqlite", "postgresql"):
        mine, theirs = statistics.mean(this[backend]), statistics.mean(other[backend])
        ratios[backend] = mine / theirs
        print(f"  {backend:10} this {mine:.0f} req/s, {args.against} {theirs:.0f} req/s: {ratios[backend]:.2f}x")
    print(f"machine: {os.cpu_count()} cores, load average at end {os.getloadavg()[0]:.1f}")
    print(json.dumps({"against": args.against, "rps": rps, "ratio_this_over_against": ratios}))


def report(results: dict, app: dict, args: argparse.Namespace) -> None:
    sqlite, pg = results["sqlite"], results["postgresql"]
    print(f"\nPrediction log: SQLite (WAL) and PostgreSQL (fsync on), {args.seconds / 2:g} s per append case")
    print(f"{'':38} {'SQLite':>12} {'PostgreSQL':>12} {'PG / SQLite':>12}")
    for key, label in (
        ("single_1_thread_rows_per_s", "single records, 1 thread, rows/s"),
        ("single_8_threads_rows_per_s", "single records, 8 threads, rows/s"),
        ("batch_10k_rows_per_s", "batches of 10 000, rows/s"),
    ):
        print(f"{label:38} {sqlite[key]:12.0f} {pg[key]:12.0f} {pg[key] / sqlite[key]:11.2f}x")
    reads = (sqlite["window_read"]["median"], pg["window_read"]["median"])
    print(f"{f'read {args.rows} rows (window), s':38} {reads[0]:12.3f} {reads[1]:12.3f} {reads[1] / reads[0]:11.2f}x")
    verdict = "met" if max(reads) < READ_TARGET_SECONDS else "NOT met"
    print(f"  target < {READ_TARGET_SECONDS:g} s on both: {verdict}")
    rps = {backend: [run["rps"] for run in runs] for backend, runs in app.items()}
    means = {backend: statistics.mean(values) for backend, values in rps.items()}
    print(f"\nThe app, {args.workers} workers, wrk concurrency 8, {args.seconds} s per run, alternating:")
    for backend, runs in app.items():
        cells = ", ".join(f"{r['rps']:.0f} req/s (p99 {r['p99_ms']:.1f} ms, {r['errors']} errors)" for r in runs)
        print(f"  {backend:10} {cells}")
    ratio = means["postgresql"] / means["sqlite"]
    verdict = "met" if ratio >= APP_TARGET_RATIO else "NOT met"
    print(f"  PostgreSQL / SQLite throughput: {ratio:.2f}x (target >= {APP_TARGET_RATIO:g}x, within 10 %: {verdict})")
    print(f"machine: {os.cpu_count()} cores, load average at end {os.getloadavg()[0]:.1f}")
    print(
        json.dumps(
            {
                "log": results,
                "app": app,
                "app_ratio": ratio,
                "read_seconds": dict(zip(("sqlite", "postgresql"), reads, strict=True)),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run (append cases: half)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the window the monitor reads")
    parser.add_argument("--rounds", type=int, default=2, help="app runs per backend, alternating")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers of the app")
    parser.add_argument("--against", metavar="COMMIT", help="only the app: this checkout against COMMIT's code")
    args = parser.parse_args()
    from tests.support.postgres import postgres_bindir, postgres_server

    if shutil.which("wrk") is None or postgres_bindir() is None:
        sys.exit("bench/predlog.py needs wrk and PostgreSQL (apt-get install wrk postgresql)")
    print(f"load average at start {os.getloadavg()[0]:.1f}", flush=True)
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="heartrisk-bench-predlog-")))
        postgres = stack.enter_context(postgres_server(durable=True))
        if args.against:
            report_against(measure_against(postgres, tmp, args), args)
            return
        results = measure_log(postgres, tmp, args)
        app = measure_app(postgres, tmp, args)
    report(results, app, args)


if __name__ == "__main__":
    main()
