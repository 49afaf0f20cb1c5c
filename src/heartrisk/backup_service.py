"""The scale-out stack's backup service: a loop that takes each backup set when its cron expression says.

Why a loop in a service of its own, rather than cron or a Prefect deployment: a base backup must run where
pgBackRest reads PostgreSQL's data folder and socket, which only a container mounting them can (the Prefect
workers do not, and should not); cron wants root and a writable root file system, which no container of the
stack has. The loop is a few lines over ``cronsim`` (already in the lock, through Prefect) with the cron syntax
the monitor's schedule uses. Robustness: the service's first start takes a full backup at once when the
repository has none (archived WAL is useless without a base), a backup that fails is logged and the next one
comes at its time, and a service that is down or failing is seen by HeartRiskBackupStale (no success pushed for
26 hours), not by nobody.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

from cronsim import CronSim

from heartrisk import pgbackrest, pushed, scale_backup
from heartrisk.settings import BackupSettings, Settings


def _log(message: str) -> None:
    print(f"[backup] {message}", file=sys.stderr, flush=True)


def next_run(backup: BackupSettings, after: datetime) -> tuple[str, datetime]:
    """The next backup after ``after``: its kind and when (a full backup wins a minute both name)."""
    full = next(CronSim(backup.full_cron, after))
    diff = next(CronSim(backup.diff_cron, after))
    return ("full", full) if full <= diff else ("diff", diff)


def describe(taken: scale_backup.Taken) -> str:
    base = taken.base
    return (
        f"{base.kind} backup {base.label}: database {base.database_bytes / 1e6:.1f} MB "
        f"({base.stored_bytes / 1e6:.1f} MB stored), {taken.objects} artifacts ({taken.copied} new, "
        f"{taken.object_bytes / 1e6:.1f} MB), {taken.volume_files} volume files, in {taken.seconds:.1f} s"
    )


def take_and_report(settings: Settings, kind: str) -> scale_backup.Taken:
    """One backup set, its line in the log and its success pushed for Prometheus."""
    taken = scale_backup.take(settings, kind)
    _log(describe(taken) + (f"; {taken.expired} expired sets deleted" if taken.expired else ""))
    if problem := pushed.push(settings.pushgateway_url, pushed.BACKUP, pushed.backup(taken)):
        _log(f"warning: {problem}")
    return taken


def serve(settings: Settings) -> None:
    """Prepare the repository, make sure a base backup exists, then take each backup at its time."""
    _log(scale_backup.prepare(settings))
    if found := pgbackrest.backups():
        _log(f"newest backup: {found[-1].label}, ended {found[-1].stopped_at}")
        if problem := pushed.push(settings.pushgateway_url, pushed.BACKUP, pushed.backup_found(found[-1].stopped)):
            _log(f"warning: {problem}")
    else:
        _log("no backup in the repository yet: a full one now")
        take_and_report(settings, "full")
    while True:
        kind, when = next_run(settings.backup, datetime.now(UTC))
        _log(f"next: {kind} backup at {when.isoformat()}")
        while (wait := (when - datetime.now(UTC)).total_seconds()) > 0:
            time.sleep(min(wait, 60.0))
        try:
            take_and_report(settings, kind)
        except Exception as exc:  # the next one comes at its time; the stale alert watches
            _log(f"the {kind} backup failed: {type(exc).__name__}: {exc}")
