"""The MLServer peer of bench/serve.py: Seldon MLServer 1.7.1 with its scikit-learn runtime.

MLServer's pins clash with ours, so it gets a virtual environment of its own, made once and kept in
the user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``, under ``heartrisk/bench``): later runs
start in seconds. The package index is pip's own configuration, or ``HEARTRISK_INDEX_URL`` when set
(the project's one variable for a mirror). The same scikit-learn version as ours loads the same
fitted pipeline from a joblib file. uvloop stays below 0.22: with 0.22 MLServer's parallel workers
die at start ("no current event loop").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import sklearn

VERSION = "1.7.1"
MODEL = "heartrisk"


def requirements() -> list[str]:
    return [
        f"mlserver=={VERSION}",
        f"mlserver-sklearn=={VERSION}",
        f"scikit-learn=={sklearn.__version__}",
        "uvloop<0.22",
    ]


def environment() -> Path:
    """The virtual environment with MLServer, created on first use; its ``bin`` folder."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "heartrisk" / "bench"
    python = f"py{sys.version_info.major}{sys.version_info.minor}"
    venv = cache / f"mlserver-{VERSION}-sklearn-{sklearn.__version__}-{python}"
    stamp = venv / ".installed"
    wanted = "\n".join(requirements())
    if stamp.is_file() and stamp.read_text() == wanted:
        return venv / "bin"
    print(f"creating MLServer's environment in {venv} (once; about a minute)", flush=True)
    subprocess.run([sys._base_executable, "-m", "venv", "--clear", str(venv)], check=True)
    index = os.environ.get("HEARTRISK_INDEX_URL")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *(["--index-url", index] if index else [])]
    subprocess.run([*pip, *requirements()], check=True)
    stamp.write_text(wanted)
    return venv / "bin"


def model_folder(folder: Path, pipeline: Any, *, port: int, grpc_port: int, metrics_port: int, workers: int) -> Path:
    """A model repository: the fitted pipeline as ``model.joblib`` and the server's settings."""
    model_dir = folder / MODEL
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, model_dir / "model.joblib")
    settings = {
        "name": MODEL,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib"},
    }
    (model_dir / "model-settings.json").write_text(json.dumps(settings))
    server = {
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": grpc_port,
        "metrics_port": metrics_port,
        "parallel_workers": workers,
        "debug": False,
    }
    (folder / "settings.json").write_text(json.dumps(server))
    return folder


def command(bin_dir: Path, folder: Path) -> list[str]:
    return [str(bin_dir / "mlserver"), "start", str(folder)]


def body(rows: list[list[float]]) -> dict[str, Any]:
    """The V2 (KServe) inference request for ``rows``, asking for predict_proba (its default is predict)."""
    flat = [value for row in rows for value in row]
    tensor = {"name": "input-0", "shape": [len(rows), len(rows[0])], "datatype": "FP64", "data": flat}
    return {"inputs": [tensor], "outputs": [{"name": "predict_proba"}]}


def probabilities(answer: dict[str, Any]) -> list[float]:
    """P(label 1) per row from a V2 answer of predict_proba."""
    data = answer["outputs"][0]["data"]
    return data[1::2]
