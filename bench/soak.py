"""Soak: N minutes of concurrent load on the app under gunicorn, with a champion promotion half-way.

Starts its own MLflow server (as in local mode) and the app (`heartrisk serve` with the default settings:
workers, threads and alias polling from config, started as the tests start it), registers two model
versions, points the alias at the first, and sends JSON predictions from `--concurrency` clients (the
tests' load: keep-alive sessions, one record, each request with its own id). Half-way it moves the
`champion` alias to the second version: the app must swap without a failed request. Prints per period
the requests served, errors, p50/p99/max latency and which versions answered; the resident memory (RSS,
and PSS which counts shared pages once) of the gunicorn master and workers when ready, after the warm-up
and at the end; and checks that the prediction log holds exactly one row per acknowledged request. Pass
criteria (issue 6): no errors, p99 within 2x across the minutes, app memory growth under 10 % after warm-up.

The clients run on the same machine (2 cores here), so the figures are what the app does while sharing
the CPU with them; the "load" column is the machine's 1-minute load average at the end of each period,
to tell the app's own jitter from other work on the machine.

Usage: .venv/bin/python bench/soak.py [--minutes 10] [--concurrency 16] [--bucket-seconds 60]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import requests

from _common import App, Load, Memory, Sample, app_server, count_rows, machine, private_mlflow

MODEL = "HeartRiskSoak"
WARM_UP_SECONDS = 30
VERSION_PARAMS = (  # two different champions, so the answering version is visible in the responses
    {"kernel": "rbf", "C": 1.0, "gamma": 0.05},
    {"kernel": "linear", "C": 0.05},
)


def register_versions(tracking_uri: str) -> list[str]:
    """Fit and register one version per VERSION_PARAMS; the alias points at the first."""
    from mlflow.tracking import MlflowClient
    from tests.support.models import fit_pipeline, register

    versions = [register(tracking_uri, MODEL, fit_pipeline(params), champion=False) for params in VERSION_PARAMS]
    MlflowClient(tracking_uri).set_registered_model_alias(MODEL, "champion", versions[0])
    return versions


def stats(samples: list[Sample], seconds: float) -> dict[str, Any]:
    """One period: requests, errors, latency percentiles of the successful ones, answers per version."""
    latencies = np.array([s.latency for s in samples if s.outcome == 200]) * 1000
    versions: dict[str, int] = {}
    for s in samples:
        answered = s.version if s.outcome == 200 else str(s.outcome)
        versions[answered] = versions.get(answered, 0) + 1
    return {
        "requests": len(samples),
        "per_second": round(len(samples) / seconds, 1),
        "errors": sum(s.outcome != 200 for s in samples),
        "p50_ms": round(float(np.percentile(latencies, 50)), 1) if len(latencies) else None,
        "p99_ms": round(float(np.percentile(latencies, 99)), 1) if len(latencies) else None,
        "max_ms": round(float(latencies.max()), 1) if len(latencies) else None,
        "versions": versions,
        "loadavg_1m": round(os.getloadavg()[0], 1),
    }


COLUMNS = (("requests", 9), ("req/s", 7), ("errors", 6), ("p50 ms", 7), ("p99 ms", 7), ("max ms", 7), ("load", 5))


def print_period(index: int, row: dict[str, Any]) -> None:
    shown = ", ".join(f"{k}: {v}" for k, v in sorted(row["versions"].items()))
    print(
        f"{index + 1:>6} {row['requests']:>9} {row['per_second']:>7} {row['errors']:>6} "
        f"{row['p50_ms']!s:>7} {row['p99_ms']!s:>7} {row['max_ms']!s:>7} {row['loadavg_1m']:>5}  {shown}",
        flush=True,
    )


def soak(app: App, load: Load, versions: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Run the started ``load`` for ``args.minutes``: the memory after the warm-up, the promotion half-way,
    a printed row per period. Returns the periods, the promotion's time and the memory."""
    from mlflow.tracking import MlflowClient

    duration = args.minutes * 60
    buckets = max(1, round(duration / args.bucket_seconds))
    bucket = duration / buckets
    started, promoted = time.time(), None
    memory: dict[str, Memory] = {}
    periods = []
    print(f"{'period':>6} {' '.join(f'{name:>{width}}' for name, width in COLUMNS)}  versions", flush=True)
    for index in range(buckets):
        end = started + (index + 1) * bucket
        while (now := time.time()) < end:
            if "warm" not in memory and now - started >= min(WARM_UP_SECONDS, duration / 4):
                memory["warm"] = app.memory()
            if promoted is None and now - started >= duration / 2:
                MlflowClient(tracking_uri=app.tracking_uri).set_registered_model_alias(MODEL, "champion", versions[1])
                promoted = now
            time.sleep(min(0.5, max(0.0, end - now)))
        periods.append(stats(load.between(end - bucket, end), bucket))
        print_period(index, periods[-1])
    return {"periods": periods, "started": started, "promoted": promoted, "memory": memory}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The app, the load and the promotion; what the summary is made of."""
    from heartrisk.config import get_settings

    settings = get_settings()
    with private_mlflow() as tracking, tempfile.TemporaryDirectory(prefix="heartrisk-soak-") as tmp:
        versions = register_versions(tracking)
        workers, poll = settings.app.workers, settings.app.model_poll_seconds
        with app_server(Path(tmp), tracking, MODEL, workers=workers, poll=poll) as app:
            ready = requests.get(f"{app.internal_url}/readyz", timeout=30).json()
            started_on = machine()
            print(
                f"soak: {args.minutes:g} min at concurrency {args.concurrency} against {app.url} "
                f"({workers} workers x {settings.app.threads} threads, alias polled every {poll:g} s); "
                f"champion v{versions[0]}, promotion to v{versions[1]} at {args.minutes * 30:.0f} s",
                flush=True,
            )
            print(f"runtime: {ready['runtime']} ({ready['runtime_note']}); machine at start: {started_on}", flush=True)
            ready_memory = app.memory()
            with Load(app.url, concurrency=args.concurrency) as load:
                done = soak(app, load, versions, args)
            done["memory"] = {"ready": ready_memory, **done["memory"], "end": app.memory()}
            time.sleep(1)  # the last rows are committed before the answers leave; this is only for safety
            logged = count_rows(app.log)
    return {**done, "samples": load.samples, "versions": versions, "logged": logged, "ready": ready,
            "machine_at_start": started_on}  # fmt: skip


def summarise(done: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The whole run in one object: the figures the verdict reads, and what a reader needs to judge them."""
    samples, periods, memory, versions = done["samples"], done["periods"], done["memory"], done["versions"]
    promoted = done["promoted"]
    acknowledged = sum(s.outcome == 200 for s in samples)
    new_version = [s.done for s in samples if s.version == versions[1]]
    old_version = [s.done for s in samples if s.version == versions[0]]
    p99s = [p["p99_ms"] for p in periods if p["p99_ms"] is not None]
    return {
        "minutes": args.minutes,
        "concurrency": args.concurrency,
        "requests": len(samples),
        "errors": len(samples) - acknowledged,
        "per_second": round(len(samples) / (args.minutes * 60), 1),
        "p99_ms_by_period": p99s,
        "loadavg_1m_by_period": [p["loadavg_1m"] for p in periods],
        "p99_max_over_min": round(max(p99s) / min(p99s), 2) if p99s else None,
        "promotion_at_s": None if promoted is None else round(promoted - done["started"], 1),
        "first_new_version_answer_after_s": (
            round(min(new_version) - promoted, 1) if new_version and promoted is not None else None
        ),
        "last_old_version_answer_after_s": (
            round(max(old_version) - promoted, 1) if old_version and promoted is not None else None
        ),
        "memory_mib": {moment: asdict(figures) for moment, figures in memory.items()},
        "rss_growth_after_warm_up_pct": round(100 * (memory["end"].rss_mib / memory["warm"].rss_mib - 1), 1),
        "pss_growth_after_warm_up_pct": round(100 * (memory["end"].pss_mib / memory["warm"].pss_mib - 1), 1),
        "prediction_log_rows": done["logged"],
        "acknowledged": acknowledged,
        "runtime": done["ready"]["runtime"],
        "machine_at_start": done["machine_at_start"],
        "machine_at_end": machine(),
    }


def report(summary: dict[str, Any], versions: list[str]) -> dict[str, bool]:
    """Print the memory, the promotion and the log's rows; return the verdict on each criterion."""
    memory = summary["memory_mib"]
    moments = "; ".join(
        f"{label} RSS {memory[moment]['rss_mib']} / PSS {memory[moment]['pss_mib']}"
        for moment, label in (("ready", "ready"), ("warm", "after warm-up"), ("end", "end"))
    )
    print(
        f"\nmemory (MiB, master + workers): {moments} ({summary['rss_growth_after_warm_up_pct']:+} % RSS, "
        f"{summary['pss_growth_after_warm_up_pct']:+} % PSS after warm-up)"
    )
    print(
        f"promotion at {summary['promotion_at_s']} s: first answer from v{versions[1]} "
        f"{summary['first_new_version_answer_after_s']} s later, last from v{versions[0]} "
        f"{summary['last_old_version_answer_after_s']} s later"
    )
    print(f"prediction log rows {summary['prediction_log_rows']} for {summary['acknowledged']} acknowledged requests")
    print(f"runtime {summary['runtime']}; machine at start {summary['machine_at_start']}, at end "
          f"{summary['machine_at_end']}")  # fmt: skip
    spread = summary["p99_max_over_min"]
    verdict = {
        "no errors": summary["errors"] == 0,
        "p99 within 2x across periods": spread is not None and spread <= 2,
        "memory growth < 10 % after warm-up": summary["rss_growth_after_warm_up_pct"] < 10,
        "one log row per acknowledged request": summary["prediction_log_rows"] == summary["acknowledged"],
        "promotion answered by the new version": summary["first_new_version_answer_after_s"] is not None,
    }
    for name, passed in verdict.items():
        print(f"  {'PASS' if passed else 'FAIL'}  {name}")
    return verdict


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", "10")))
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--bucket-seconds", type=float, default=60, help="length of one reporting period")
    args = parser.parse_args()
    done = run(args)
    summary = summarise(done, args)
    verdict = report(summary, done["versions"])
    print(json.dumps({**summary, "verdict": verdict}))
    return 0 if all(verdict.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
