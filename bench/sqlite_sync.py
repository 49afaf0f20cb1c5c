"""The SQLite log's disk syncs: synchronous=FULL (a WAL sync per commit) against NORMAL (at checkpoints).

    python bench/sqlite_sync.py [--seconds 10] [--rounds 4] [--workers 2]

What FULL buys is durability across a power cut (docs/operations.md); what it costs is measured here,
both levels in the same run, and the ratio FULL / NORMAL printed:
  - in-process appends of single records through the log's own interface, from 1 thread and from 8
    (the app's 2 workers x 4 threads): the sync's cost where nothing else hides it;
  - the app: ``heartrisk serve`` with the SQLite log at each level (HEARTRISK_SQLITE_SYNCHRONOUS), one
    record per request, wrk at concurrency 8, ``--rounds`` times alternating the levels;
  - how many single-record requests NORMAL leaves unsynced at most: the WAL frames one append writes,
    against SQLite's checkpoint every 1 000 frames (``wal_autocheckpoint``), where NORMAL syncs.
Prints the figures and, last, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
from contextlib import closing
from pathlib import Path

from _common import machine
from predlog import app_throughput, records, served_model, single_appends

LEVELS = ("NORMAL", "FULL")
PROBE = 100  # appends whose WAL frames are counted (well under one checkpoint's worth)


def appends(tmp: Path, seconds: float) -> dict[str, dict[str, float]]:
    """Rows per second at each level, single records, 1 and 8 threads, each case on a fresh file."""
    rates: dict[str, dict[str, float]] = {level: {} for level in LEVELS}
    for threads in (1, 8):
        for level in LEVELS:
            target = str(tmp / f"appends-{level}-{threads}.sqlite")
            rate = single_appends(target, threads=threads, seconds=seconds, sqlite_synchronous=level)
            rates[level][f"single_{threads}_threads_rows_per_s"] = rate
    return rates


def frames_per_append(tmp: Path) -> tuple[float, int]:
    """WAL frames (pages) written by one single-record append, and SQLite's checkpoint interval in frames:
    ``PROBE`` appends after an emptied WAL, then a passive checkpoint reports the frames they left in it."""
    from heartrisk.predlog import open_log

    path = tmp / "frames.sqlite"
    log = open_log(path)
    row = records(1)
    log.append(row, [0.5], [1], model_version="bench", request_id="first")  # the table and its indexes exist
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        for n in range(PROBE):
            log.append(row, [0.5], [1], model_version="bench", request_id=f"probe-{n}")
        _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        autocheckpoint = conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    log.close()
    return frames / PROBE, autocheckpoint


def app_rounds(tmp: Path, args: argparse.Namespace) -> dict[str, list[dict[str, float]]]:
    """The app at each level, ``args.rounds`` times, the order of the levels alternating round by round."""
    runs: dict[str, list[dict[str, float]]] = {level: [] for level in LEVELS}
    with served_model() as tracking:
        for n in range(args.rounds):
            for level in LEVELS if n % 2 == 0 else LEVELS[::-1]:
                os.environ["HEARTRISK_SQLITE_SYNCHRONOUS"] = level  # the app's environment (app_server passes it)
                target = str(tmp / f"app-{n}-{level}.sqlite")
                run = app_throughput(tracking, target, tmp, workers=args.workers, seconds=args.seconds)
                runs[level].append(run)
                print(f"  round {n + 1} {level:6} {run['rps']:.0f} req/s, p99 {run['p99_ms']:.1f} ms", flush=True)
    os.environ.pop("HEARTRISK_SQLITE_SYNCHRONOUS", None)
    return runs


def report(rates: dict, frames: tuple[float, int], app: dict, args: argparse.Namespace) -> None:
    print(f"\nSQLite log, synchronous FULL against NORMAL ({args.seconds / 2:g} s per append case)")
    print(f"{'':36} {'NORMAL':>10} {'FULL':>10} {'FULL / NORMAL':>14}")
    for threads in (1, 8):
        key = f"single_{threads}_threads_rows_per_s"
        normal, full = rates["NORMAL"][key], rates["FULL"][key]
        label = f"single records, {threads} thread{'s' if threads > 1 else ''}, rows/s"
        print(f"{label:36} {normal:10.0f} {full:10.0f} {full / normal:13.2f}x")
    means = {level: statistics.mean(run["rps"] for run in app[level]) for level in LEVELS}
    p99 = {level: statistics.median(run["p99_ms"] for run in app[level]) for level in LEVELS}
    ratio = means["FULL"] / means["NORMAL"]
    print(f"{'the app, req/s (mean of rounds)':36} {means['NORMAL']:10.0f} {means['FULL']:10.0f} {ratio:13.2f}x")
    print(f"{'the app, p99 ms (median of rounds)':36} {p99['NORMAL']:10.1f} {p99['FULL']:10.1f}")
    per_append, autocheckpoint = frames
    print(
        f"\nNORMAL syncs the WAL at checkpoints: every {autocheckpoint} frames, and one single-record append writes "
        f"{per_append:.1f}, so up to about {autocheckpoint / per_append:.0f} requests' rows are unsynced at a time."
    )
    print(f"machine: {os.cpu_count()} cores, load average at end {os.getloadavg()[0]:.1f}")
    summary = {"appends": rates, "app": app, "app_ratio_full_over_normal": ratio, "frames_per_append": per_append}
    print(json.dumps({**summary, "wal_autocheckpoint": autocheckpoint, "machine": machine()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run (append cases: half)")
    parser.add_argument("--rounds", type=int, default=4, help="app runs per level, alternating")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers of the app")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/sqlite_sync.py needs wrk (apt-get install wrk)")
    print(f"load average at start {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="heartrisk-bench-sqlite-sync-") as folder:
        tmp = Path(folder)
        rates = appends(tmp, args.seconds / 2)
        frames = frames_per_append(tmp)
        app = app_rounds(tmp, args)
    report(rates, frames, app, args)


if __name__ == "__main__":
    main()
