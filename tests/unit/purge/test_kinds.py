"""Every kind purged with one cut-off from one state folder, as the command does; a kind whose store is
unreachable fails with its reason after the others were purged; retention off touches nothing but the log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from heartrisk.config import get_settings
from heartrisk.predlog import open_log
from heartrisk.purge import KINDS, cutoff, kinds_for, purge_everything
from heartrisk.settings import Settings
from tests.support.aged import aged, mailed, served, subjects
from tests.support.predlog import logged
from tests.support.servers import free_port


def a_state_folder(state: Path, monkeypatch: pytest.MonkeyPatch, tracking_uri: str) -> Settings:
    """A state folder holding, of each kind on disk, something 40 days old and something 2 days old."""
    monkeypatch.setenv("HEARTRISK_STATE_DIR", str(state))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    for name in ("PREDICTIONS_DB", "REPORT_DIR", "MAIL_DIR", "EVIDENTLY_WORKSPACE"):
        monkeypatch.delenv(f"HEARTRISK_{name}", raising=False)
    settings = get_settings()
    log = open_log(settings.predictions_db)
    served(log, 3, 40, "old")
    served(log, 2, 2, "new")
    log.close()
    aged(settings.drift.report_dir / "drift-old.html", 40)
    aged(settings.drift.report_dir / "drift-new.html", 2)
    mailed(settings.mail.maildir, "old alert", 40)
    mailed(settings.mail.maildir, "new alert", 2)
    return settings


def test_every_kind_goes_with_one_cut_off_and_the_result_counts_each(tmp_path: Path, monkeypatch) -> None:
    settings = a_state_folder(tmp_path / "state", monkeypatch, f"sqlite:///{tmp_path / 'mlflow.db'}")
    result = purge_everything(settings, 30)
    assert result.ok, result.failed
    assert result.to_json() == {
        "deleted": 3, "remaining": 2, "older_than_days": 30, "snapshots": 0, "reports": 1, "mlflow_runs": 0,
        "mails": 1, "mlflow_runs_awaiting_gc": 0, "failed": {},
    }  # fmt: skip
    assert list(logged(open_log(settings.predictions_db))["request_id"]) == ["new", "new"]
    assert [p.name for p in settings.drift.report_dir.iterdir()] == ["drift-new.html"]
    assert subjects(settings.mail.maildir) == ["new alert"]


def test_an_unreachable_store_fails_its_kind_after_the_others_were_purged(tmp_path: Path, monkeypatch) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    settings = a_state_folder(tmp_path / "state", monkeypatch, url)
    result = purge_everything(settings, 30)
    assert result.failed == {"mlflow_runs": f"MLflow unreachable at {url}: ConnectionError"}
    assert (result.count("predictions"), result.count("reports"), result.count("mails")) == (3, 1, 1)
    assert result.to_json()["mlflow_runs"] is None


def test_retention_off_looks_only_at_the_log(tmp_path: Path, monkeypatch) -> None:
    settings = a_state_folder(tmp_path / "state", monkeypatch, f"http://127.0.0.1:{free_port()}")
    result = purge_everything(settings, 0)
    assert result.ok and result.to_json()["remaining"] == 5
    assert len(list(settings.drift.report_dir.iterdir())) == 2
    assert kinds_for(0) == ("predictions",) and kinds_for(-1) == ("predictions",) and kinds_for(0.5) == KINDS


def test_one_cut_off_for_every_kind() -> None:
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    assert cutoff(180, now) == now - timedelta(days=180)
    assert cutoff(0.5, now) == datetime(2026, 12, 4, 0, 0, tzinfo=UTC)
