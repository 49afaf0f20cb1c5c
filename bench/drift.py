"""What the monitoring flow costs next to Evidently alone, for windows of 10k, 100k, 1M and 10M rows.

    python bench/drift.py [--rows 10000 100000 1000000 10000000] [--max-rows 1000000] [--repeats 3]

For each size, served rows are sampled (seeded) from data/heart.csv with a little noise on the
measurements, each with the probability and label a fitted model gives its original row, served by two
model versions (a promotion at 80 % of the window), and written to a prediction log. A window larger
than ``--max-rows`` (HEARTRISK_DRIFT_MAX_ROWS, 1 000 000 by default) is sampled in the database query.
Then, each in its own process (so peak RSS is per case), in turns, three times each (the median run is
reported):

- Evidently alone: the same report the flow runs (input drift, prediction drift, the dashboard's
  statistics), on the very frames the flow compares (read, sampled and validated beforehand by the
  flow's own functions, untimed), and reading its verdicts;
- one full monitor flow run: read the log window (sampled above the limit), validate, score the
  reference with the champion (cached per champion), Evidently, HTML report, the snapshot added to
  the Evidently workspace, MLflow run with the report, Prefect table artifact; no e-mail, no retraining.
  A window within the limit is measured as a daily run finds it (the previous day's run left its copy
  of the window, all but the last seventh: ``heartrisk.predlog.columnar``) and as the first run of all.

Against data/reference.csv, on a real Prefect server and a real MLflow server (with a registered
champion) started here. Prints seconds, peak RSS, the flow's overhead (its seconds minus Evidently's,
and as a share of Evidently's), the CPU seconds of each process in its timed part (the Prefect and
MLflow servers' own CPU not included; less sensitive than seconds to other work on the machine),
where the flow's time went, and the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from _common import ROOT, free_port, private_mlflow, running

BIN = Path(sys.executable).parent
MODEL = "HeartRiskBenchModel"
TARGET_OVERHEAD_SECONDS_AT_100K = 1.0
TARGET_OVERHEAD_SHARE_AT_1M = 0.15
TARGET_PEAK_MB_AT_1M = 2048
TARGET_SECONDS_AT_10M = 30.0
TARGET_PEAK_MB_AT_10M = 2500
CHUNK = 200_000


def prepare(rows: int, db: Path, seed: int = 42) -> None:
    """A prediction log of ``rows`` realistic records, written in chunks (10M rows never sit in memory)."""
    import numpy as np
    from tests.support.models import fit_pipeline

    from heartrisk.data import features_and_target, load_csv
    from heartrisk.predlog import open_log
    from heartrisk.schema import BY_NAME, FEATURE_NAMES, NUMERIC_FEATURES

    rng = np.random.default_rng(seed)
    base = load_csv(ROOT / "data" / "heart.csv")
    features = base[list(FEATURE_NAMES)]
    pipeline = fit_pipeline()
    scores = pipeline.predict_proba(features_and_target(base)[0])[:, list(pipeline.classes_).index(1)]
    log = open_log(db)
    for start in range(0, rows, CHUNK):
        size = min(CHUNK, rows - start)
        picked = rng.integers(0, len(base), size)
        frame = features.iloc[picked].reset_index(drop=True)
        for name in NUMERIC_FEATURES:
            feature = BY_NAME[name]
            noisy = frame[name] + rng.normal(0, 0.03 * features[name].std(), size)
            noisy = noisy.clip(feature.minimum, feature.maximum)
            frame[name] = noisy.round() if feature.dtype == "int" else noisy.round(1)
        probability = scores[picked]
        version = "1" if start < 0.8 * rows else "2"
        log.append(frame.to_numpy(dtype=float), probability, (probability >= 0.5).astype(int),
                   model_version=version, request_id=f"bench-{start}")  # fmt: skip
    log.close()


def frames(settings):
    """The flow's own read of the window and of the reference, run here untimed: the frames it compares."""
    from heartrisk.monitor import read_current, read_reference

    current = read_current.fn(None, settings, settings.drift.window_days)
    reference, note = read_reference.fn(str(settings.reference_path), settings, True)
    assert "probability" in reference.columns, note
    return current, reference


def measure(case: str) -> dict:
    """Run one case in this (fresh) process; return seconds and the process's peak RSS."""
    from heartrisk.config import get_settings

    settings = get_settings()
    if case == "evidently":
        from heartrisk.evidently_report import compute_drift

        current, reference = frames(settings)
        start, cpu = time.perf_counter(), time.process_time()
        result, _ = compute_drift(current.frame, reference, settings.drift.threshold, current.versions)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        rows, compared, steps = current.rows, len(current.frame), {}
        share, predicted = result.share, result.prediction.probability.score
    else:
        import asyncio

        # Imported lazily by the flow, and by the Evidently case's untimed read: both cases time no imports.
        import adbc_driver_sqlite.dbapi  # noqa: F401

        import heartrisk.dashboard
        import heartrisk.evidently_report
        import heartrisk.predlog.columnar
        import heartrisk.predlog.sqlite  # noqa: F401
        from heartrisk.monitor import monitor_flow

        start, cpu = time.perf_counter(), time.process_time()
        state = asyncio.run(monitor_flow(retrain=False, recipients=[], return_state=True))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        summary = state.result()
        rows, compared = summary.current_rows, summary.sampled_rows or summary.current_rows
        share, predicted = summary.share, summary.prediction_drift["score"]
        steps = task_seconds(state.state_details.flow_run_id)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"case": case, "rows": rows, "compared": compared, "seconds": round(seconds, 3), "cpu": round(cpu, 3),
            "peak_mb": round(peak_mb), "share": share, "prediction_score": predicted, "steps": steps}  # fmt: skip


def task_seconds(flow_run_id) -> dict[str, str]:
    """Where the flow's time went, from Prefect's own record of its runs: each step's start (seconds after the
    flow run's) and duration, and the flow run's own; the gaps are Prefect's work between steps."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    flow_runs = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    with get_client(sync_client=True) as client:
        for _ in range(50):  # the server records task runs from events, a moment after the flow ends
            runs = client.read_task_runs(flow_run_filter=flow_runs)
            if all(r.start_time and r.end_time for r in runs):
                break
            time.sleep(0.2)
        flow_run = client.read_flow_run(flow_run_id)
    began = flow_run.start_time
    steps = {"flow": f"0+{(flow_run.end_time - began).total_seconds():.2f}"} if began and flow_run.end_time else {}
    for r in sorted(runs, key=lambda r: r.start_time or began):
        if r.start_time and r.end_time and began:
            start, length = (r.start_time - began).total_seconds(), (r.end_time - r.start_time).total_seconds()
            steps[r.name.rsplit("-", 1)[0]] = f"{start:.2f}+{length:.2f}"
    return steps


def child(*args: str, env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, *args], env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench child {args} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}


def targets(results: dict[int, tuple[dict, dict]]) -> list[str]:
    """The issue's targets, each with the figure measured and its verdict."""
    checks = []
    if 100_000 in results:
        peer, ours = results[100_000]
        extra = ours["seconds"] - peer["seconds"]
        limit = TARGET_OVERHEAD_SECONDS_AT_100K
        checks.append((extra <= limit, f"flow minus Evidently at 100k <= {limit} s ({extra:.2f} s)"))
    if 1_000_000 in results:
        peer, ours = results[1_000_000]
        share, limit = ours["seconds"] / peer["seconds"] - 1, TARGET_OVERHEAD_SHARE_AT_1M
        checks.append((share <= limit, f"flow minus Evidently at 1M <= {limit:.0%} of Evidently ({share:+.0%})"))
        peak = ours["peak_mb"]
        checks.append((peak < TARGET_PEAK_MB_AT_1M, f"flow peak RSS at 1M < {TARGET_PEAK_MB_AT_1M} MB ({peak} MB)"))
    if 10_000_000 in results:
        _, ours = results[10_000_000]
        seconds, peak = ours["seconds"], ours["peak_mb"]
        checks.append((seconds < TARGET_SECONDS_AT_10M, f"flow at 10M < {TARGET_SECONDS_AT_10M:g} s ({seconds:.1f} s)"))
        checks.append((peak < TARGET_PEAK_MB_AT_10M, f"flow peak RSS at 10M < {TARGET_PEAK_MB_AT_10M} MB ({peak} MB)"))
    return [f"target: {text}: {'met' if ok else 'NOT met'}" for ok, text in checks]


def alternated(repeats: int, env: dict[str, str], copy: Path | None = None) -> list[dict]:
    """Evidently alone and the flow, in turns, ``repeats`` times each; the run of median time of each.

    With ``copy`` (the window fits HEARTRISK_DRIFT_MAX_ROWS, so the flow keeps a copy of it), the flow runs
    twice in each turn: once as a daily run finds the copy (the copy left by the previous day's run,
    ``<copy>.before``, put back first) and once as the first run of all (no copy yet). Evidently alone reads
    the window from the database (untimed), never the copy.

    One run of each is at the mercy of the machine's other work: on a shared machine a single 1M-row
    pair once came out with the flow faster than Evidently alone.
    """
    cases: list[list[dict]] = [[], [], []] if copy else [[], []]
    for _ in range(repeats):
        cases[0].append(child("--measure", "evidently", env={**env, "HEARTRISK_DRIFT_WINDOW_COPY": "false"}))
        if copy:
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(copy.with_suffix(".before"), copy)
        cases[1].append(child("--measure", "flow", env=env))
        if copy:
            shutil.rmtree(copy)
            cases[2].append(child("--measure", "flow", env=env))
    return [median_run(runs) for runs in cases]


def line(rows: int, peer: dict, flow: dict, label: str) -> str:
    extra = flow["seconds"] - peer["seconds"]
    return (f"{rows:>9} {flow['compared']:>9} {peer['seconds']:>12.2f} {flow['seconds']:>8.2f} {extra:>13.2f} "
            f"{extra / peer['seconds']:>+9.0%} {peer['peak_mb']:>13} {flow['peak_mb']:>8} {label}")  # fmt: skip


def median_run(runs: list[dict]) -> dict:
    ordered = sorted(runs, key=lambda r: r["seconds"])
    return {**ordered[len(ordered) // 2], "peak_mb": max(r["peak_mb"] for r in runs)}


def run(args: argparse.Namespace, env: dict[str, str], tmp: Path) -> None:
    """Prepare each window, measure Evidently alone and the flow on it, print a row per size and the targets.

    A window that fits the limit is written in two parts: six sevenths, then an untimed flow run (the
    previous day's, which leaves the window copy), then the last seventh (a day of a 7-day window).
    """
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)", flush=True)
    print(f"{'rows':>9} {'compared':>9} {'Evidently s':>12} {'flow s':>8} {'flow - Ev. s':>13} {'overhead':>9} "
          f"{'Evidently MB':>13} {'flow MB':>8}")  # fmt: skip
    results = {}
    copy = Path(env["HEARTRISK_STATE_DIR"]) / "window-copy"
    for rows in args.rows:
        db = tmp / f"predictions-{rows}.sqlite"
        case_env = {**env, "HEARTRISK_PREDICTIONS_DB": str(db)}
        copied = rows <= args.max_rows
        started = time.perf_counter()
        earlier = rows * 6 // 7 if copied else rows
        child("--prepare", str(earlier), "--db", str(db), env=env)
        if copied:
            shutil.rmtree(copy, ignore_errors=True)
            child("--measure", "flow", env=case_env)
            shutil.rmtree(copy.with_suffix(".before"), ignore_errors=True)
            copy.rename(copy.with_suffix(".before"))
            child("--prepare", str(rows - earlier), "--db", str(db), "--seed", "43", env=env)
        prepared = time.perf_counter() - started
        peer, ours, *first = alternated(args.repeats, case_env, copy if copied else None)
        assert peer["rows"] == ours["rows"] == rows and peer["compared"] == ours["compared"], (peer, ours)
        for flow in (ours, *first):
            assert abs(peer["share"] - flow["share"]) < 1e-12, (peer, flow)  # the same frames, the same verdicts
            assert abs(peer["prediction_score"] - flow["prediction_score"]) < 1e-12, (peer, flow)
        results[rows] = (peer, ours)
        print(line(rows, peer, ours, "(a daily run: the copy has all but the last day)" if first else ""), flush=True)
        if first:
            print(line(rows, peer, first[0], "(the first run: no copy yet)"), flush=True)
        cpu = f"Evidently {peer['cpu']:.2f}, flow {ours['cpu']:.2f}, flow - Evidently {ours['cpu'] - peer['cpu']:.2f}"
        print(f"{'':>9} CPU s of the process in the timed part (less sensitive to the machine's load): {cpu}")
        print(f"{'':>9} flow steps (start+seconds): {ours['steps']}; log written in {prepared:.0f} s", flush=True)
        if first:
            print(f"{'':>9} first run's steps (start+seconds): {first[0]['steps']}", flush=True)
        db.unlink()
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("\n".join(targets(results)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000, 10_000_000])
    parser.add_argument("--max-rows", type=int, default=1_000_000, help="HEARTRISK_DRIFT_MAX_ROWS")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each case; the median is reported")
    parser.add_argument("--prepare", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--measure", choices=("evidently", "flow"), help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=42, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        prepare(args.prepare, args.db, args.seed)
        return
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="heartrisk-bench-drift-")))
        mlflow_url = stack.enter_context(private_mlflow())
        from tests.support.models import register

        register(mlflow_url, MODEL)
        port = free_port()
        api = f"http://127.0.0.1:{port}/api"
        env = {
            "PREFECT_HOME": str(tmp / "prefect"),
            "PREFECT_API_URL": api,
            "MLFLOW_TRACKING_URI": mlflow_url,
            "HEARTRISK_MODEL_NAME": MODEL,
            "HEARTRISK_STATE_DIR": str(tmp / "state"),
            "HEARTRISK_EMAIL_TO": "",
            "HEARTRISK_DRIFT_MAX_ROWS": str(args.max_rows),
        }
        server = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
        stack.enter_context(running(server, health=f"{api}/health", log=tmp / "prefect.log", env=env, timeout=180))
        # One unreported run creates the MLflow experiment, Prefect's flow record, the Evidently project and
        # the champion's scores of the reference (kept per champion): what a daily run finds already there.
        warm = tmp / "warm.sqlite"
        child("--prepare", "1000", "--db", str(warm), env=env)
        child("--measure", "flow", env={**env, "HEARTRISK_PREDICTIONS_DB": str(warm)})
        run(args, env, tmp)


if __name__ == "__main__":
    main()
