"""Retention: a Prefect flow that deletes the predictions older than the retention period, once a day.

The prediction log holds health data, so it must not grow forever. The flow is a deployment of its own
(``purge-old-predictions``) rather than a step of the monitoring flow: retention is a duty that must
not wait on drift monitoring (a monitor that fails on SMTP, or is paused, would otherwise stop it), its
schedule and its history (rows deleted per day) show on their own in the Prefect UI, and the operator
can run it alone. ``heartrisk predictions purge`` does the same without Prefect.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from heartrisk import names
from heartrisk.config import get_settings
from heartrisk.predlog import Purged, open_log
from heartrisk.runlog import in_run_log


@task(name="purge-predictions", cache_policy=NO_CACHE)
def purge(predictions_db: str, older_than_days: float, copies: Path) -> Purged:
    log = open_log(predictions_db)
    try:
        with in_run_log("heartrisk.predlog"):
            return log.purge(older_than_days=older_than_days, copies=copies)
    finally:
        log.close()


# Async on purpose, like the other flows: Prefect's sync engine waits up to a second on its heartbeat thread.
@flow(name=names.PURGE_FLOW)
async def purge_flow(older_than_days: float | None = None) -> dict[str, int]:
    """Delete predictions older than ``older_than_days`` (default HEARTRISK_PREDICTIONS_RETENTION_DAYS; 0 keeps all)."""
    settings = get_settings()
    days = settings.predictions_retention_days if older_than_days is None else older_than_days
    purged = purge(settings.predictions_db, days, settings.window_copy_dir)
    logger = get_run_logger()
    if days <= 0:
        logger.info(f"Retention is off (0 days): nothing deleted, {purged.remaining} rows kept.")
    else:
        logger.info(f"Deleted {purged.deleted} predictions older than {days:g} days; {purged.remaining} remain.")
    return {"deleted": purged.deleted, "remaining": purged.remaining}
