"""What an explanation costs: ``POST /api/v1/explain`` under gunicorn with an RBF champion, next to
``/api/v1/predict``; and our exact computation next to shap 0.51.0's exact explainer (the peer).

    python bench/explain.py [--requests 200]

One calibrated RBF SVC, registered with its ONNX export as training registers it, on a private MLflow server;
the app with its default workers. Requests go one at a time (a person at the form or one client), cycling
through the study's patients; the first explanation of each worker also summarises the study (reported
apart). The peer runs in its own process with shap installed beside ours (bench/_shap.py) on the same model,
background and records, and says what importing shap costs a worker.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests

from _common import ROOT, app_server, machine, private_mlflow, tree_memory

FILES = ("model.onnx", "background.npy", "records.npy")  # what the peer's process is given


def latencies(url: str, records: list[dict], count: int) -> np.ndarray:
    """Milliseconds of ``count`` sequential POSTs of the records in turn; each must answer 200."""
    times = []
    with requests.Session() as session:
        for index in range(count):
            started = time.perf_counter()
            answer = session.post(url, json=records[index % len(records)], timeout=60)
            times.append((time.perf_counter() - started) * 1000)
            answer.raise_for_status()
    return np.array(times)


def shown(name: str, times: np.ndarray) -> str:
    p50, p95 = np.percentile(times, [50, 95])
    return f"{name:<34} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  max {times.max():7.1f} ms  ({len(times)} requests)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="timed requests per endpoint")
    args = parser.parse_args()
    from tests.support.models import PARAMS, fit_pipeline, register

    import _shap
    from heartrisk import export
    from heartrisk.data import deduplicate, features_and_target, load_csv
    from heartrisk.explain import BACKGROUND_ROWS, Background
    from heartrisk.schema import FEATURE_NAMES

    print(machine())
    features, diagnosis = features_and_target(deduplicate(load_csv(ROOT / "data" / "heart.csv")))
    records = features.to_dict("records")
    pipeline = fit_pipeline()
    with private_mlflow() as uri, tempfile.TemporaryDirectory(prefix="heartrisk-bench-explain-") as tmp:
        version = register(uri, "HeartRiskExplainBench", pipeline)
        with app_server(Path(tmp), uri, "HeartRiskExplainBench", timeout=600) as app:
            before = tree_memory(app.proc.pid)
            cold = latencies(f"{app.url}/api/v1/explain", records, 2)  # each of the 2 workers summarises once
            explain = latencies(f"{app.url}/api/v1/explain", records, args.requests)
            predict = latencies(f"{app.url}/api/v1/predict", records, args.requests)
            after = tree_memory(app.proc.pid)
        folder = Path(tmp)
        rows = features.to_numpy(dtype=float)
        background = Background.of(rows, diagnosis.to_numpy())
        (folder / "model.onnx").write_bytes(export.export(pipeline, features).graph)
        np.save(folder / "background.npy", background.rows)
        np.save(folder / "records.npy", rows[:: max(1, len(rows) // 30)])
        env = {"PYTHONPATH": f"{ROOT / 'src'}:{ROOT}:{_shap.folder()}"}
        peer = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "_shap.py"), *(str(folder / n) for n in FILES)],
            capture_output=True, text=True, check=True, env=env,
        )  # fmt: skip
    measured = json.loads(peer.stdout.strip().splitlines()[-1])
    print(f"model: calibrated SVC {PARAMS}, version {version}, served by ONNX Runtime; {len(FEATURE_NAMES)} features")
    print(f"background: {BACKGROUND_ROWS} typical patients summarising {background.patients}")
    print(
        f"first two explanations (a worker summarises the study on its first): {', '.join(f'{t:.0f} ms' for t in cold)}"
    )
    print(shown("POST /api/v1/explain", explain))
    print(shown("POST /api/v1/predict", predict))
    print(f"app memory (RSS) before / after explaining: {before.rss_mib:.0f} / {after.rss_mib:.0f} MiB")
    ours, theirs = np.array(measured["ours_s"]) * 1000, np.array(measured["shap_s"]) * 1000
    print(shown("in-process, ours (exact)", ours))
    print(shown(f"in-process, shap {_shap.VERSION} Exact", theirs))
    ratio = np.median(theirs) / np.median(ours)
    print(f"shap / ours (median): {ratio:.1f}x; largest difference {measured['max_difference']:.1e}")
    print(f"import shap in a worker: {measured['import_s']:.2f} s, +{measured['import_rss_mib']:.0f} MiB RSS")


if __name__ == "__main__":
    main()
