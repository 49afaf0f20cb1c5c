"""Each kind's purge by name, and the purge of every kind one after the other, as the command runs it.

A kind that fails (its store unreachable, a file it cannot delete) does not stop the others: its reason is
kept and the purge as a whole fails once all were tried. The daily flow (:mod:`heartrisk.retention`) runs
the same :func:`purge_one` as one Prefect task per kind.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from heartrisk.predlog import DAY_SECONDS, purge_old
from heartrisk.purge import files, mlflow_runs, snapshots
from heartrisk.purge.result import KINDS, PurgeResult, Swept
from heartrisk.settings import Settings
from heartrisk.summaries import Failed


def _predictions(settings: Settings, days: float, before: datetime) -> Swept:
    purged = purge_old(settings.predictions_db, days)
    return Swept(purged.deleted, purged.where, remaining=purged.remaining)


# One function per kind, in KINDS order; each takes the settings, the period in days and its cut-off.
PURGES: dict[str, Callable[[Settings, float, datetime], Swept]] = {
    "predictions": _predictions,
    "snapshots": lambda settings, _, before: snapshots.purge_snapshots(settings.evidently, before),
    "reports": lambda settings, _, before: files.purge_reports(settings.drift.report_dir, before),
    "mlflow_runs": lambda settings, _, before: mlflow_runs.purge_runs(
        settings.mlflow, mlflow_runs.backend_store(settings), before
    ),
    "mails": lambda settings, _, before: files.purge_mails(settings.mail.maildir, before),
}


def kinds_for(older_than_days: float) -> tuple[str, ...]:
    """Every kind; with retention off (0 days or less) only the log, which then says how many rows it keeps."""
    return KINDS if older_than_days > 0 else ("predictions",)


def cutoff(older_than_days: float, now: datetime | None = None) -> datetime:
    """The moment before which everything goes: one cut-off for every kind of one purge."""
    return (now or datetime.now(UTC)) - timedelta(seconds=older_than_days * DAY_SECONDS)


def purge_one(kind: str, settings: Settings, older_than_days: float, before: datetime) -> Swept:
    return PURGES[kind](settings, older_than_days, before)


def reason(error: BaseException) -> str:
    """The first line of what went wrong, or its type when it says nothing."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def purge_everything(settings: Settings, older_than_days: float) -> PurgeResult:
    """Purge every kind now, one after the other; a kind that fails is said, and the others still run."""
    before = cutoff(older_than_days)
    outcomes: dict[str, Swept | Failed] = {}
    for kind in kinds_for(older_than_days):
        try:
            outcomes[kind] = purge_one(kind, settings, older_than_days, before)
        except Exception as exc:
            outcomes[kind] = Failed(reason(exc))
    return PurgeResult.of(older_than_days, outcomes)
