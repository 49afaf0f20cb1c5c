"""The batch jobs' pushes, to a real Pushgateway (Debian's): what each job pushes, a push replacing the job's
last one, no push without an address, and a gateway that cannot be reached said in a sentence, not raised."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from heartrisk import pushed
from heartrisk.backup import Backup
from heartrisk.pgbackrest import BaseBackup
from heartrisk.purge import PurgeResult, Swept
from heartrisk.scale_backup import Taken
from heartrisk.summaries import MonitorSummary
from tests.support.pushgateway import pushed as served
from tests.support.pushgateway import pushgateway
from tests.support.servers import free_port


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with pushgateway(tmp_path_factory.mktemp("pushgateway")) as url:
        yield url


def summary(share: float | None, drift: bool) -> MonitorSummary:
    return MonitorSummary("prediction log", "ref.csv", 120, 303, 0.5, "drift" if drift else "no drift", drift, share,
                          [])  # fmt: skip


def test_a_monitoring_run_pushes_its_verdict_and_the_next_replaces_it(gateway: str) -> None:
    assert pushed.push(gateway, pushed.MONITORING, pushed.monitoring(summary(0.6, True), now=1_800_000_000)) is None
    assert served(gateway, pushed.MONITORING) == {
        "heartrisk_monitoring_last_success_timestamp_seconds": 1_800_000_000,
        "heartrisk_monitoring_drift_detected": 1,
        "heartrisk_monitoring_drift_share": 0.6,
        "heartrisk_monitoring_drift_threshold": 0.5,
        "heartrisk_monitoring_current_rows": 120,
    }
    # too few rows: no share computed, and none left from the run before (a push replaces the job's group)
    assert pushed.push(gateway, pushed.MONITORING, pushed.monitoring(summary(None, False), now=1_800_086_400)) is None
    after = served(gateway, pushed.MONITORING)
    assert "heartrisk_monitoring_drift_share" not in after
    assert after["heartrisk_monitoring_last_success_timestamp_seconds"] == 1_800_086_400
    assert after["heartrisk_monitoring_drift_detected"] == 0


def test_a_purge_pushes_each_kinds_count_and_a_backup_its_size_under_their_own_jobs(gateway: str) -> None:
    swept = {kind: Swept(n, "here") for n, kind in enumerate(("snapshots", "reports", "mlflow_runs", "mails"))}
    result = PurgeResult(30, {"predictions": Swept(7, "log", remaining=41), **swept})
    assert pushed.push(gateway, pushed.PURGE, pushed.purge(result, now=1_800_000_000)) is None
    made = Backup(Path("/backups/heartrisk-state.tar.gz"), 12, 3_400_000)
    assert pushed.push(gateway, pushed.BACKUP, pushed.backup(made, now=1_800_000_100)) is None
    purge = served(gateway, pushed.PURGE)
    assert purge["heartrisk_purge_last_success_timestamp_seconds"] == 1_800_000_000
    deleted = {"predictions": 7, "snapshots": 0, "reports": 1, "mlflow_runs": 2, "mails": 3}
    assert {name: n for name, n in purge.items() if name.startswith("heartrisk_purge_deleted")} == {
        f'heartrisk_purge_deleted{{kind="{kind}"}}': n for kind, n in deleted.items()
    }
    assert (purge["heartrisk_purge_retention_days"], purge["heartrisk_purge_prediction_log_rows"]) == (30, 41)
    assert served(gateway, pushed.BACKUP) == {
        "heartrisk_backup_last_success_timestamp_seconds": 1_800_000_100,
        "heartrisk_backup_files": 12,
        "heartrisk_backup_bytes": 3_400_000,
    }


def test_a_scale_out_backup_set_pushes_its_size_and_a_starting_service_its_newest_backups_time(gateway: str) -> None:
    base = BaseBackup("20261204-010000F", "full", 1.0, 1_800_000_000.0, database_bytes=60_000_000, stored_bytes=7)
    taken = Taken(base, objects=20, object_bytes=4_000_000, copied=20, volume_files=5, volume_bytes=9_000,
                  seconds=30.0, expired=0)  # fmt: skip
    assert pushed.push(gateway, pushed.BACKUP, pushed.backup(taken, now=1_800_000_200)) is None
    assert served(gateway, pushed.BACKUP) == {
        "heartrisk_backup_last_success_timestamp_seconds": 1_800_000_200,
        "heartrisk_backup_files": 25,
        "heartrisk_backup_bytes": 64_009_000,
    }
    assert pushed.push(gateway, pushed.BACKUP, pushed.backup_found(base.stopped)) is None  # a gateway made anew
    assert served(gateway, pushed.BACKUP) == {"heartrisk_backup_last_success_timestamp_seconds": 1_800_000_000}


def test_without_an_address_nothing_is_pushed() -> None:
    assert pushed.push("", pushed.BACKUP, [pushed.Value("heartrisk_x", "x", 1)]) is None


def test_a_gateway_that_cannot_be_reached_is_a_sentence_not_an_error() -> None:
    port = free_port()
    problem = pushed.push(f"http://127.0.0.1:{port}", pushed.PURGE, pushed.purge(PurgeResult(30)), timeout=2)
    assert problem is not None and "Connection refused" in problem
    assert problem.startswith(f"metrics of heartrisk_purge not pushed to the Pushgateway at http://127.0.0.1:{port}: ")


def test_an_address_with_a_login_is_not_used_and_the_password_never_shown() -> None:
    """prometheus_client's plain handler takes no login from the URL; should one be set, the warning hides it."""
    problem = pushed.push(f"http://ops:s3cret@127.0.0.1:{free_port()}", pushed.BACKUP, [], timeout=2)
    assert problem is not None and "s3cret" not in problem and "ops" not in problem
