"""Retention: a Prefect flow that deletes the predictions older than the retention period, once a day.

The prediction log holds health data, so it must not grow forever. The flow is a deployment of its own
(``purge-old-predictions``) rather than a step of the monitoring flow: retention is a duty that must
not wait on drift monitoring (a monitor that fails on SMTP, or is paused, would otherwise stop it), its
schedule and its history (rows deleted per day) show on their own in the Prefect UI, and the operator
can run it alone. ``heartrisk predictions purge`` does the same without Prefect.
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from heartrisk import names
from heartrisk.config import get_settings
from heartrisk.predlog import Purged, purge_old


@task(name="purge-predictions", cache_policy=NO_CACHE)
def purge(predictions_db: str, older_than_days: float) -> Purged:
    return purge_old(predictions_db, older_than_days)


# Async on purpose, like the other flows: Prefect's sync engine waits up to a second on its heartbeat thread.
@flow(name=names.PURGE_FLOW)
async def purge_flow(older_than_days: float | None = None) -> dict[str, int]:
    """Delete predictions older than ``older_than_days`` (default HEARTRISK_PREDICTIONS_RETENTION_DAYS; 0 keeps all)."""
    settings = get_settings()
    days = settings.predictions_retention_days if older_than_days is None else older_than_days
    purged = purge(settings.predictions_db, days)
    get_run_logger().info(purged.line())
    return {"deleted": purged.deleted, "remaining": purged.remaining}
