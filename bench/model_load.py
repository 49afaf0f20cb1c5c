"""What checking a version's signature costs: the verified load the app and the monitor make, its stages, next
to the load it replaced (the whole logged model downloaded, then MLflow's own loader).

    python bench/model_load.py [--loads 15]

One signed version (a calibrated SVC pipeline with its ONNX export, registered as training registers it) on
a private MLflow server; each figure is the median of ``--loads`` runs after one warm-up. The peer needs
MLflow's deserialisation switch on, which this process turns on for that measure only, after ours.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import machine, private_mlflow


def median_ms(call: Callable[[], object], loads: int) -> float:
    call()
    times = []
    for _ in range(loads):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=15, help="timed loads per figure (median)")
    args = parser.parse_args()
    from tests.support.models import register

    from heartrisk import signing
    from heartrisk._compat.mlflow import version_files
    from heartrisk.config import get_settings
    from heartrisk.registry import SKOPS_FILE, Registry, load_pipeline

    print(machine())
    with private_mlflow() as uri, tempfile.TemporaryDirectory(prefix="heartrisk-bench-load-") as tmp:
        version = register(uri, "HeartRiskLoadBench")
        models = Registry(uri, "HeartRiskLoadBench", "champion", verify_key=get_settings().mlflow.model_verify_key_file)
        tags = models.client.get_model_version(models.name, version).tags
        key = signing.load_verify_key(models.verify_key)
        files = signing.check_tag(key, tags, models.name, version)
        version_files(models.client, models.name, version, tmp, uri, sorted(files))
        sizes = ", ".join(f"{path} {(Path(tmp) / path).stat().st_size / 1000:.0f} KB" for path in sorted(files))
        data = (Path(tmp) / SKOPS_FILE).read_bytes()
        stages = {
            "read the verify key": lambda: signing.load_verify_key(models.verify_key),
            "check the signature": lambda: signing.check_tag(key, tags, models.name, version),
            "hash the signed files": lambda: signing.verified(files, Path(tmp), models.name),
            "skops load, our types": lambda: load_pipeline(data),
        }
        figures = {name: median_ms(call, args.loads) for name, call in stages.items()}
        ours = median_ms(lambda: models.load(version), args.loads)
        os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"  # the peer only, measured last
        peer = median_ms(lambda: _mlflow_load(models, version, uri), args.loads)
    print(f"signed files: {sizes}")
    for name, value in figures.items():
        print(f"{name:<40} {value:9.3f} ms")
    print(f"{'verified load (Registry.load)':<40} {ours:9.3f} ms")
    print(f"{'peer: whole model + mlflow.sklearn':<40} {peer:9.3f} ms")
    print(f"verified / peer: {ours / peer:.2f}x")


def _mlflow_load(models, version: str, uri: str) -> object:
    import mlflow.sklearn

    from heartrisk._compat.mlflow import version_files

    with tempfile.TemporaryDirectory(prefix="heartrisk-bench-peer-") as folder:
        return mlflow.sklearn.load_model(str(version_files(models.client, models.name, version, folder, uri)))


if __name__ == "__main__":
    main()
