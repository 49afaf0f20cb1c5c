"""Soak: N minutes of concurrent load on the app under gunicorn, with a champion promotion half-way.

Starts its own MLflow server (as in local mode) and the app (`heartrisk serve`, default settings:
workers, threads and alias polling from config), registers two model versions, points the alias at
the first, and sends JSON predictions from `--concurrency` clients (keep-alive sessions, records of
heart.csv in turn). Half-way it moves the `champion` alias to the second version: the app must swap
without a failed request. Prints per minute the requests served, errors, p50/p99/max latency and
which versions answered; the resident memory (RSS, and PSS which counts shared pages once) of the
gunicorn master and workers when ready, after the warm-up and at the end; and checks that the
prediction log holds exactly one row per acknowledged request. Pass criteria (issue 6): no errors,
p99 within 2x across the minutes, app memory growth under 10 % after warm-up.

The load generator runs on the same machine (2 cores here), so the figures are what the app does
while sharing the CPU with its clients; the "load" column is the machine's 1-minute load average at
the end of each period, to tell the app's own jitter from other work on the machine.

Usage: .venv/bin/python bench/soak.py [--minutes 10] [--concurrency 16] [--bucket-seconds 60]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import requests

from _common import ROOT, app_memory, free_port, machine, private_mlflow, running

BIN = Path(sys.executable).parent
MODEL = "HeartRiskSoak"
WARM_UP_SECONDS = 30
VERSION_PARAMS = (  # two different champions, so the answering version is visible in the responses
    {"kernel": "rbf", "C": 1.0, "gamma": 0.05},
    {"kernel": "linear", "C": 0.05},
)


@dataclass(frozen=True)
class Sample:
    done: float  # seconds since the load started
    latency: float  # seconds
    ok: bool
    version: str  # model version that answered, or the error


def register_versions(tracking_uri: str) -> list[str]:
    """Fit and register one version per VERSION_PARAMS; the alias points at the first."""
    from mlflow.tracking import MlflowClient
    from tests.support.models import fit_pipeline, register

    versions = [register(tracking_uri, MODEL, fit_pipeline(params), champion=False) for params in VERSION_PARAMS]
    MlflowClient(tracking_uri).set_registered_model_alias(MODEL, "champion", versions[0])
    return versions


def records() -> list[dict[str, Any]]:
    from heartrisk.data import load_csv
    from heartrisk.schema import BY_NAME, FEATURE_NAMES

    frame = load_csv(ROOT / "data" / "heart.csv")[list(FEATURE_NAMES)]
    rows = frame.to_dict("records")
    return [{k: int(v) if BY_NAME[k].dtype == "int" else float(v) for k, v in row.items()} for row in rows]


class LoadGenerator:
    def __init__(self, url: str, concurrency: int, rows: list[dict[str, Any]]) -> None:
        self.url, self.concurrency, self.rows = url, concurrency, rows
        self.samples: list[Sample] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.started = 0.0
        self.threads: list[threading.Thread] = []

    def run_client(self, n: int) -> None:
        session = requests.Session()
        i = n
        while not self.stop.is_set():
            record = self.rows[i % len(self.rows)]
            i += self.concurrency
            start = time.perf_counter()
            try:
                response = session.post(f"{self.url}/api/v1/predict", json=record, timeout=60)
                ok = response.status_code == 200
                version = response.json()["model_version"] if ok else f"HTTP {response.status_code}"
            except (requests.RequestException, ValueError, KeyError) as exc:
                ok, version = False, type(exc).__name__
            end = time.perf_counter()
            with self.lock:
                self.samples.append(Sample(end - self.started, end - start, ok, version))

    def start(self) -> None:
        self.started = time.perf_counter()
        for n in range(self.concurrency):
            thread = threading.Thread(target=self.run_client, args=(n,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(90)

    def window(self, start: float, end: float) -> list[Sample]:
        with self.lock:
            return [s for s in self.samples if start <= s.done < end]


def stats(samples: list[Sample], seconds: float) -> dict[str, Any]:
    latencies = np.array([s.latency for s in samples if s.ok]) * 1000
    versions: dict[str, int] = {}
    for s in samples:
        versions[s.version] = versions.get(s.version, 0) + 1
    return {
        "requests": len(samples),
        "per_second": round(len(samples) / seconds, 1),
        "errors": sum(not s.ok for s in samples),
        "p50_ms": round(float(np.percentile(latencies, 50)), 1) if len(latencies) else None,
        "p99_ms": round(float(np.percentile(latencies, 99)), 1) if len(latencies) else None,
        "max_ms": round(float(latencies.max()), 1) if len(latencies) else None,
        "versions": versions,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", "10")))
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--bucket-seconds", type=float, default=60, help="length of one reporting period")
    args = parser.parse_args()
    duration = args.minutes * 60
    buckets = max(1, round(duration / args.bucket_seconds))
    bucket = duration / buckets

    with private_mlflow() as tracking, tempfile.TemporaryDirectory(prefix="heartrisk-soak-") as tmp:
        versions = register_versions(tracking)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            "MLFLOW_TRACKING_URI": tracking,
            "HEARTRISK_MODEL_NAME": MODEL,
            "HEARTRISK_STATE_DIR": str(Path(tmp) / "state"),
            "HEARTRISK_PREDICTIONS_DB": str(Path(tmp) / "predictions.sqlite"),
        }
        command = [str(BIN / "heartrisk"), "serve", "--host", "127.0.0.1", "--port", str(port)]
        with running(command, health=f"{url}/readyz", log=Path(tmp) / "app.log", env=env, timeout=180) as proc:
            from mlflow.tracking import MlflowClient

            from heartrisk.config import get_settings
            from heartrisk.predlog import open_log

            os.environ.update(env)
            settings = get_settings()
            master = proc
            ready = requests.get(f"{url}/readyz", timeout=30).json()
            started_on = machine()
            print(
                f"soak: {args.minutes:g} min at concurrency {args.concurrency} against {url} "
                f"({settings.app.workers} workers x {settings.app.threads} threads, alias polled every "
                f"{settings.app.model_poll_seconds:g} s); champion v{versions[0]}, promotion to v{versions[1]} "
                f"at {duration / 2:.0f} s",
                flush=True,
            )
            print(f"runtime: {ready['runtime']} ({ready['runtime_note']}); machine at start: {started_on}", flush=True)
            memory = {"ready": app_memory(master.pid)}
            load = LoadGenerator(url, args.concurrency, records())
            load.start()
            promoted_at: float | None = None
            columns = (("requests", 9), ("req/s", 7), ("errors", 6), ("p50 ms", 7), ("p99 ms", 7), ("max ms", 7))
            titles = " ".join(f"{name:>{width}}" for name, width in (*columns, ("load", 5)))
            print(f"{'period':>6} {titles}  versions", flush=True)
            periods = []
            for index in range(buckets):
                end = (index + 1) * bucket
                while (now := time.perf_counter() - load.started) < end:
                    if "warm" not in memory and now >= min(WARM_UP_SECONDS, duration / 4):
                        memory["warm"] = app_memory(master.pid)
                    if promoted_at is None and now >= duration / 2:
                        MlflowClient(tracking_uri=tracking).set_registered_model_alias(MODEL, "champion", versions[1])
                        promoted_at = now
                    time.sleep(min(0.5, max(0.0, end - now)))
                if index == buckets - 1:
                    load.finish()
                row = {**stats(load.window(index * bucket, end), bucket), "loadavg_1m": round(os.getloadavg()[0], 1)}
                periods.append(row)
                shown = ", ".join(f"{k}: {v}" for k, v in sorted(row["versions"].items()))
                print(
                    f"{index + 1:>6} {row['requests']:>9} {row['per_second']:>7} {row['errors']:>6} "
                    f"{row['p50_ms']!s:>7} {row['p99_ms']!s:>7} {row['max_ms']!s:>7} {row['loadavg_1m']:>5}  {shown}",
                    flush=True,
                )
            memory["end"] = app_memory(master.pid)
            time.sleep(1)  # the last rows are committed before the answers leave; this is only for safety
            logged = open_log(env["HEARTRISK_PREDICTIONS_DB"]).count()

    samples = load.samples
    acknowledged = sum(s.ok for s in samples)
    new_version = [s.done for s in samples if s.version == versions[1]]
    last_old = [s.done for s in samples if s.version == versions[0]]
    p99s = [p["p99_ms"] for p in periods if p["p99_ms"] is not None]
    summary = {
        "minutes": args.minutes,
        "concurrency": args.concurrency,
        "requests": len(samples),
        "errors": len(samples) - acknowledged,
        "per_second": round(len(samples) / duration, 1),
        "p99_ms_by_period": p99s,
        "loadavg_1m_by_period": [p["loadavg_1m"] for p in periods],
        "p99_max_over_min": round(max(p99s) / min(p99s), 2) if p99s else None,
        "promotion_at_s": None if promoted_at is None else round(promoted_at, 1),
        "first_new_version_answer_after_s": (
            round(min(new_version) - promoted_at, 1) if new_version and promoted_at is not None else None
        ),
        "last_old_version_answer_after_s": (
            round(max(last_old) - promoted_at, 1) if last_old and promoted_at is not None else None
        ),
        "memory_mib": memory,
        "rss_growth_after_warm_up_pct": round(100 * (memory["end"]["rss_mib"] / memory["warm"]["rss_mib"] - 1), 1),
        "pss_growth_after_warm_up_pct": round(100 * (memory["end"]["pss_mib"] / memory["warm"]["pss_mib"] - 1), 1),
        "prediction_log_rows": logged,
        "acknowledged": acknowledged,
        "runtime": ready["runtime"],
        "machine_at_start": started_on,
        "machine_at_end": machine(),
    }
    print(
        f"\nmemory (MiB, master + workers): ready RSS {memory['ready']['rss_mib']} / PSS {memory['ready']['pss_mib']}; "
        f"after warm-up RSS {memory['warm']['rss_mib']} / PSS {memory['warm']['pss_mib']}; "
        f"end RSS {memory['end']['rss_mib']} / PSS {memory['end']['pss_mib']} "
        f"({summary['rss_growth_after_warm_up_pct']:+} % RSS, "
        f"{summary['pss_growth_after_warm_up_pct']:+} % PSS after warm-up)"
    )
    print(
        f"promotion at {summary['promotion_at_s']} s: first answer from v{versions[1]} "
        f"{summary['first_new_version_answer_after_s']} s later, last from v{versions[0]} "
        f"{summary['last_old_version_answer_after_s']} s later"
    )
    print(f"prediction log rows {logged} for {acknowledged} acknowledged requests")
    print(f"runtime {ready['runtime']}; machine at start {started_on}, at end {summary['machine_at_end']}")
    verdict = {
        "no errors": summary["errors"] == 0,
        "p99 within 2x across periods": summary["p99_max_over_min"] is not None and summary["p99_max_over_min"] <= 2,
        "memory growth < 10 % after warm-up": summary["rss_growth_after_warm_up_pct"] < 10,
        "one log row per acknowledged request": logged == acknowledged,
        "promotion answered by the new version": summary["first_new_version_answer_after_s"] is not None,
    }
    for name, passed in verdict.items():
        print(f"  {'PASS' if passed else 'FAIL'}  {name}")
    print(json.dumps({**summary, "verdict": verdict}))
    return 0 if all(verdict.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
