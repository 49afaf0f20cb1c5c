"""Where the time of one prediction request goes, in-process: the app's request path with ONNX Runtime
next to the same path with scikit-learn, and the cost of each stage.

    python bench/request_path.py [--repeat 7] [--number 1000] [--profile]

The app is built by ``create_app`` with the model installed in its holder, and called as gunicorn calls
it (a WSGI environ for ``POST /api/v1/predict`` with one record, and with ONNX Runtime for the Open
Inference Protocol's ``POST /v2/models/heartrisk/infer`` with the same record as one [1, 13] tensor;
prediction log on, in a temporary folder; metrics in-process). Each figure is the best of ``--repeat``
runs of ``--number`` calls, which is the least disturbed by other work on the machine. What gunicorn, the
kernel and the client add is measured by bench/serve.py. ``--profile`` also prints cProfile's top
functions of the ONNX path.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import json
import pstats
import sys
import tempfile
import timeit
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
from flask import Response

from _common import ROOT, machine


def best_us(call: Callable[[], Any], *, repeat: int, number: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=repeat)) / number * 1e6


def wsgi_caller(app: Any, body: bytes, path: str = "/api/v1/predict") -> Callable[[], None]:
    """One POST of ``body`` to ``path`` through the WSGI interface, as a server makes it."""

    def call() -> None:
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "127.0.0.1:8000",
            "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, "wsgi.multithread": True,
            "wsgi.multiprocess": True, "wsgi.run_once": False,
        }  # fmt: skip
        status: list[str] = []
        b"".join(app(environ, lambda line, headers, exc_info=None: status.append(line)))
        if not status[0].startswith("200"):
            raise RuntimeError(status[0])

    return call


def profile(call: Callable[[], None], number: int) -> None:
    """cProfile's top functions, by own time, over ``number`` calls."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(number):
        call()
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=1000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="X does not have valid feature names")
    from tests.support.models import fit_pipeline

    from heartrisk import export
    from heartrisk.config import get_settings
    from heartrisk.predlog import open_log
    from heartrisk.schema import FEATURE_NAMES, validate_records
    from heartrisk.scoring import LoadedModel
    from heartrisk.serving import create_app, security
    from heartrisk.serving.model_holder import ModelHolder

    started = machine()
    pipeline = fit_pipeline({"kernel": "rbf", "C": 1.0, "gamma": 0.01}, folds=5)
    sklearn_model = LoadedModel.of("Bench", "1", pipeline)
    onnx_model = dataclasses.replace(sklearn_model, onnx=export.OnnxModel(export.to_onnx(pipeline)))
    record = json.loads(pd.read_csv(ROOT / "data" / "heart.csv")[list(FEATURE_NAMES)].head(1).to_json(orient="records"))
    body = json.dumps(record[0]).encode()
    tensor = {"name": "input-0", "shape": [1, len(FEATURE_NAMES)], "datatype": "FP32", "data": list(record[0].values())}
    v2_body = json.dumps({"inputs": [tensor]}).encode()
    matrix, _ = validate_records(record)
    timing = {"repeat": args.repeat, "number": args.number}
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="heartrisk-bench-path-") as tmp:
        base = get_settings()
        app = dataclasses.replace(base.app, metrics_dir="")
        settings = dataclasses.replace(base, predictions_db=Path(tmp) / "p.sqlite", app=app)
        for name, model in (("onnxruntime", onnx_model), ("scikit-learn", sklearn_model)):
            holder = ModelHolder(settings)
            holder.install(model)
            call = wsgi_caller(create_app(settings, holder), body)
            for _ in range(200):
                call()
            figures[f"whole request, {name}"] = best_us(call, **timing)
            if args.profile and name == "onnxruntime":
                profile(call, args.number)
            if name == "onnxruntime":
                v2 = wsgi_caller(create_app(settings, holder), v2_body, "/v2/models/heartrisk/infer")
                figures["whole request, onnxruntime, /v2 infer"] = best_us(v2, **timing)
        log = open_log(Path(tmp) / "stages.sqlite")
        stages = {
            "validate one record (validate_records)": lambda: validate_records(record),
            "model, onnxruntime (LoadedModel.predict)": lambda: onnx_model.predict(matrix),
            "model, scikit-learn (LoadedModel.predict)": lambda: sklearn_model.predict(matrix),
            "prediction log append (one row, committed)": lambda: log.append(
                matrix, [0.5], [1], model_version="1", request_id="r"
            ),
            "read the body (orjson)": lambda: orjson.loads(body),
            "write the answer (orjson)": lambda: orjson.dumps({"probability": 0.5, "label": 1, "model_version": "1"}),
            "security headers": lambda: security.add_headers(Response(b"{}"), static=False),
        }
        for name, stage in stages.items():
            figures[name] = best_us(stage, **timing)
    ended = machine()
    print(f"\nOne prediction request in-process (best of {args.repeat} x {args.number} calls), microseconds:")
    for name, value in figures.items():
        print(f"  {name:46} {value:8.1f}")
    onnx, sklearn = figures["whole request, onnxruntime"], figures["whole request, scikit-learn"]
    print(f"\nscikit-learn path / ONNX path: {sklearn / onnx:.1f}x; the model's share of the ONNX path: "
          f"{figures['model, onnxruntime (LoadedModel.predict)'] / onnx:.0%}")  # fmt: skip
    print(f"/v2 infer / /api/v1/predict, ONNX path: {figures['whole request, onnxruntime, /v2 infer'] / onnx:.2f}x")
    print(f"machine at start: {started}\nmachine at end:   {ended}")
    print(json.dumps({"microseconds": figures, "machine_at_start": started, "machine_at_end": ended}))


if __name__ == "__main__":
    main()
