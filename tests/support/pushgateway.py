"""A real Prometheus Pushgateway for the tests: Debian's ``prometheus-pushgateway`` on a free loopback port."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import free_port, require, running

BINARY = "prometheus-pushgateway"


@contextmanager
def pushgateway(folder: Path) -> Iterator[str]:
    """The gateway's URL while the block runs (nothing persisted); skipped where it is not installed, failed in
    CI (HEARTRISK_REQUIRE_ALL=1)."""
    binary = shutil.which(BINARY) or shutil.which("pushgateway")
    require(binary is not None, f"{BINARY} is not installed (Debian: apt-get install prometheus-pushgateway)")
    url = f"http://127.0.0.1:{free_port()}"
    command = [str(binary), f"--web.listen-address={url.removeprefix('http://')}", "--persistence.file="]
    with running(command, health=f"{url}/-/ready", log=folder / "pushgateway.log", timeout=30):
        yield url


def pushed(url: str, job: str) -> dict[str, float]:
    """What the gateway serves for ``job``, by sample as the text format writes it without the job and instance
    labels (``heartrisk_purge_deleted{kind="reports"}``)."""
    found = {}
    for family in text_string_to_metric_families(requests.get(f"{url}/metrics", timeout=10).text):
        for sample in family.samples:
            if sample.labels.get("job") == job and sample.name.startswith("heartrisk_"):
                own = sorted((k, v) for k, v in sample.labels.items() if k not in ("job", "instance"))
                labels = ",".join(f'{k}="{v}"' for k, v in own)
                found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found
