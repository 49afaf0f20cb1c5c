"""The shap peer of bench/explain.py: shap 0.51.0's exact explainer, in a process of its own.

shap is not a dependency of HeartRisk (docs/BENCHMARKS.md says why), so it is installed once, with the three
packages it adds to ours (numba, llvmlite, slicer) and none of ours, into a folder of the user's cache
(``$XDG_CACHE_HOME`` or ``~/.cache``, under ``heartrisk/bench``) that only this peer's process puts on its path.
Run as a script it measures, in a worker-like process (the app's modules imported first): shap's import time
and the memory it adds, then its exact explanations of the given records against our own on the same model
and background. It prints one JSON line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

VERSION = "0.51.0"
PACKAGES = [f"shap=={VERSION}", "numba==0.68.1", "llvmlite==0.50.0", "slicer==0.0.8"]  # what pip adds for shap


def folder() -> Path:
    """The folder holding shap and what it adds, made on first use."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "heartrisk" / "bench"
    target = cache / f"shap-{VERSION}-py{sys.version_info.major}{sys.version_info.minor}"
    stamp = target / ".installed"
    if not (stamp.is_file() and stamp.read_text() == "\n".join(PACKAGES)):
        print(f"installing shap {VERSION} into {target} (once)", flush=True)
        index = os.environ.get("HEARTRISK_INDEX_URL")
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target)]
        subprocess.run([*pip, *(["--index-url", index] if index else []), *PACKAGES], check=True)
        stamp.write_text("\n".join(PACKAGES))
    return target


def _rss_mib() -> float:
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]) / 1024


def main(graph: Path, rows: Path, records: Path) -> None:
    import numpy as np

    import heartrisk.serving.api  # noqa: F401  (what a worker has loaded before it is asked to explain)
    from heartrisk import export
    from heartrisk.explain import Background, explain

    before, started = _rss_mib(), time.perf_counter()
    import shap

    imported, added = time.perf_counter() - started, _rss_mib() - before
    model = export.OnnxModel(graph.read_bytes())
    background = np.load(rows)
    equal = Background(background, np.full(len(background), 1 / len(background)), len(background))

    def probability(features: np.ndarray) -> np.ndarray:
        return model.predict_proba(features)[:, 1]

    explainer = shap.explainers.Exact(probability, shap.maskers.Independent(background, max_samples=len(background)))
    theirs, ours, difference = [], [], 0.0
    served = _Served(model)
    for record in np.load(records):
        started = time.perf_counter()
        values = explainer(record[None]).values[0]
        theirs.append(time.perf_counter() - started)
        started = time.perf_counter()
        mine = explain(served, record, equal, float(probability(record[None])[0]))
        ours.append(time.perf_counter() - started)
        difference = max(difference, float(np.abs(np.array(list(mine.contributions.values())) - values).max()))
    print(json.dumps({"import_s": imported, "import_rss_mib": added, "shap_s": theirs, "ours_s": ours,
                      "max_difference": difference}))  # fmt: skip


class _Served:
    """The ONNX model as :func:`heartrisk.explain.explain` calls a served version."""

    version = "bench"

    def __init__(self, model) -> None:
        self.model = model

    def predict(self, features):
        probability = self.model.predict_proba(features)[:, 1]
        return probability, probability >= 0.5


if __name__ == "__main__":
    main(*map(Path, sys.argv[1:4]))
