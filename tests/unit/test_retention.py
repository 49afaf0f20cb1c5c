"""Retention: the purge task on both backends, and the deployment that runs it daily."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from heartrisk import names, predlog
from heartrisk.predlog import DAY_SECONDS, Purged, open_log
from heartrisk.retention import purge
from heartrisk.schema import FEATURE_NAMES
from tests.support.paths import ROOT
from tests.support.window_copy import copied_rows


def test_the_task_deletes_what_is_older_than_the_period_from_the_log_and_the_window_copy(
    log_target: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    log = open_log(log_target)
    for days_ago, rows in ((200, 3), (1, 2)):
        then = time.time() - days_ago * DAY_SECONDS
        with monkeypatch.context() as patch:
            patch.setattr(predlog, "time", SimpleNamespace(time=lambda then=then: then))
            log.append(np.ones((rows, len(FEATURE_NAMES))), [0.5] * rows, [1] * rows, model_version="1", request_id="r")
    assert log.window(days=365, copy=tmp_path).rows == 5  # what a monitoring run with a year's window keeps
    log.close()
    assert purge.fn(log_target, 0, tmp_path) == Purged(deleted=0, remaining=5)  # 0 keeps everything
    assert purge.fn(log_target, 180, tmp_path) == Purged(deleted=3, remaining=2)
    assert len(copied_rows(tmp_path)) == 2  # the monitor's copy of those rows went with them


def test_the_deployment_runs_the_flow_daily_on_the_pool() -> None:
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (deployment,) = [d for d in spec["deployments"] if d["name"] == names.PURGE_DEPLOYMENT]
    assert deployment["entrypoint"] == "src/heartrisk/retention.py:purge_flow"
    assert [s["cron"] for s in deployment["schedules"]] == ["{{ $HEARTRISK_PURGE_CRON }}"]
