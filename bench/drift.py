"""What the monitoring flow costs next to Evidently alone, for 10k, 100k and 1M current rows.

    python bench/drift.py [--rows 10000 100000 1000000]

For each size, current rows are sampled (seeded) from data/heart.csv with a little noise on the
measurements and written to a prediction log. Then, each in its own process (so peak RSS is per case):
Evidently alone (Report + DataDriftPreset on the frames read from that log) and one full monitor
flow run (read the log window, validate, Evidently, HTML report, MLflow run with the report, Prefect
table artifact; no e-mail, no retraining) against data/reference.csv, on a real Prefect server and a
real MLflow server started here. Prints seconds, peak RSS and the flow's overhead ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from _common import ROOT, free_port, private_mlflow, running

BIN = Path(sys.executable).parent
TARGET_OVERHEAD_AT_100K = 0.20
TARGET_PEAK_MB_AT_1M = 2048


def prepare(rows: int, db: Path, seed: int = 42) -> None:
    """A prediction log of ``rows`` realistic records: heart.csv resampled, measurements jittered."""
    import numpy as np

    from heartrisk.data import load_csv
    from heartrisk.predlog import open_log
    from heartrisk.schema import BY_NAME, FEATURE_NAMES, NUMERIC_FEATURES

    rng = np.random.default_rng(seed)
    base = load_csv(ROOT / "data" / "heart.csv")[list(FEATURE_NAMES)]
    frame = base.iloc[rng.integers(0, len(base), rows)].reset_index(drop=True)
    for name in NUMERIC_FEATURES:
        feature = BY_NAME[name]
        noisy = frame[name] + rng.normal(0, 0.03 * base[name].std(), rows)
        noisy = noisy.clip(feature.minimum, feature.maximum)
        frame[name] = noisy.round() if feature.dtype == "int" else noisy.round(1)
    log = open_log(db)
    chunk = 100_000
    for start in range(0, rows, chunk):
        part = frame.iloc[start : start + chunk]
        log.append(
            part.to_numpy(dtype=float), [0.5] * len(part), [1] * len(part), model_version="bench", request_id="b"
        )


def measure(case: str, db: Path) -> dict:
    """Run one case in this (fresh) process; return seconds and the process's peak RSS."""
    from heartrisk.config import get_settings

    settings = get_settings()
    if case == "evidently":
        from heartrisk.data import load_csv, validate_served
        from heartrisk.drift import data_definition, shared_columns
        from heartrisk.predlog import open_log

        served = open_log(db).features(days=settings.drift_window_days)
        current = validate_served(served, str(db))  # the flow's frames: same values, same dtypes
        del served
        reference = load_csv(settings.reference_path)
        from evidently import Dataset, Report
        from evidently.presets import DataDriftPreset

        columns = shared_columns(current, reference)
        definition = data_definition(columns)
        start = time.perf_counter()
        snapshot = Report([DataDriftPreset()]).run(
            Dataset.from_pandas(current[columns], data_definition=definition),
            Dataset.from_pandas(reference[columns], data_definition=definition),
        )
        share = next(m for m in snapshot.dict()["metrics"] if "share" in m["value"])["value"]["share"]
        seconds = time.perf_counter() - start
        rows = len(current)
    else:
        import asyncio

        from heartrisk.monitor import monitor_flow

        start = time.perf_counter()
        state = asyncio.run(monitor_flow(retrain=False, recipients=[], return_state=True))
        seconds = time.perf_counter() - start
        summary = state.result()
        share, rows = summary.share, summary.current_rows
        steps = task_seconds(state.state_details.flow_run_id)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {"case": case, "rows": rows, "seconds": round(seconds, 3), "peak_mb": round(peak_mb), "share": share}
    return result | ({"steps": steps} if case == "flow" else {})


def task_seconds(flow_run_id) -> dict[str, float]:
    """Where the flow's time went, from Prefect's own record of its task runs."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {r.name.rsplit("-", 1)[0]: round((r.end_time - r.start_time).total_seconds(), 2) for r in runs}


def child(*args: str, env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, *args], env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench child {args} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--prepare", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--measure", choices=("evidently", "flow"), help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        prepare(args.prepare, args.db)
        return
    if args.measure:
        print(json.dumps(measure(args.measure, args.db)))
        return

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="heartrisk-bench-drift-")))
        mlflow_url = stack.enter_context(private_mlflow())
        port = free_port()
        api = f"http://127.0.0.1:{port}/api"
        env = {
            "PREFECT_HOME": str(tmp / "prefect"),
            "PREFECT_API_URL": api,
            "MLFLOW_TRACKING_URI": mlflow_url,
            "HEARTRISK_STATE_DIR": str(tmp / "state"),
            "HEARTRISK_EMAIL_TO": "",
        }
        server = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
        stack.enter_context(running(server, health=f"{api}/health", log=tmp / "prefect.log", env=env, timeout=180))
        warm = tmp / "warm.sqlite"  # one unreported run creates the MLflow experiment and Prefect's flow record
        child("--prepare", "1000", "--db", str(warm), env=env)
        child("--measure", "flow", "--db", str(warm), env={**env, "HEARTRISK_PREDICTIONS_DB": str(warm)})

        print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
        print(f"{'rows':>9} {'Evidently s':>12} {'flow s':>8} {'overhead':>9} {'Evidently MB':>13} {'flow MB':>8}")
        results = {}
        for rows in args.rows:
            db = tmp / f"predictions-{rows}.sqlite"
            child("--prepare", str(rows), "--db", str(db), env=env)
            case_env = {**env, "HEARTRISK_PREDICTIONS_DB": str(db)}
            peer = child("--measure", "evidently", "--db", str(db), env=case_env)
            ours = child("--measure", "flow", "--db", str(db), env=case_env)
            assert peer["rows"] == ours["rows"] == rows, (peer, ours)
            assert abs(peer["share"] - ours["share"]) < 1e-12, (peer, ours)
            overhead = ours["seconds"] / peer["seconds"] - 1
            results[rows] = (overhead, ours["peak_mb"])
            print(
                f"{rows:>9} {peer['seconds']:>12.2f} {ours['seconds']:>8.2f} {overhead:>+9.0%} "
                f"{peer['peak_mb']:>13} {ours['peak_mb']:>8}",
                flush=True,
            )
            print(f"{'':>9} flow steps (s): {ours['steps']}", flush=True)
        print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        if 100_000 in results:
            ok = results[100_000][0] <= TARGET_OVERHEAD_AT_100K
            print(f"target: overhead at 100k <= {TARGET_OVERHEAD_AT_100K:.0%}: {'met' if ok else 'NOT met'}")
        if 1_000_000 in results:
            ok = results[1_000_000][1] < TARGET_PEAK_MB_AT_1M
            print(f"target: flow peak RSS at 1M < {TARGET_PEAK_MB_AT_1M} MB: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
