"""Retention: the purge task on both backends, and the deployment that runs it daily."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from heartrisk import names
from heartrisk.predlog import DAY_SECONDS, base, open_log
from heartrisk.retention import purge
from heartrisk.schema import FEATURE_NAMES
from tests.support.paths import ROOT


def test_the_task_deletes_what_is_older_than_the_period(log_target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    log = open_log(log_target)
    for days_ago, rows in ((200, 3), (1, 2)):
        then = time.time() - days_ago * DAY_SECONDS
        with monkeypatch.context() as patch:
            patch.setattr(base, "time", SimpleNamespace(time=lambda then=then: then))
            log.append(np.ones((rows, len(FEATURE_NAMES))), [0.5] * rows, [1] * rows, model_version="1", request_id="r")
    log.close()
    kept = purge.fn(log_target, 0)  # 0 keeps everything
    assert (kept.deleted, kept.remaining, kept.older_than_days) == (0, 5, 0)
    purged = purge.fn(log_target, 180)
    assert (purged.deleted, purged.remaining) == (3, 2)
    assert purged.line() == f"Deleted 3 predictions older than 180 days from {log.where}; 2 remain."


def test_the_deployment_runs_the_flow_daily_on_the_pool() -> None:
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (deployment,) = [d for d in spec["deployments"] if d["name"] == names.PURGE_DEPLOYMENT]
    assert deployment["entrypoint"] == "src/heartrisk/retention.py:purge_flow"
    assert [s["cron"] for s in deployment["schedules"]] == ["{{ $HEARTRISK_PURGE_CRON }}"]
