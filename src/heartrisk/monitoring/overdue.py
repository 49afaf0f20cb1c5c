"""Has the daily purge succeeded lately? Every monitoring run checks, and mails when it has not for more
than two days.

A purge that fails mails its failure itself (:mod:`heartrisk.retention`); one that does not run at all
(its deployment paused or deleted, no worker, a run that crashed or waits forever) cannot. The monitoring
flow runs daily on a deployment of its own, so it asks Prefect's server for the newest completed run of
the purge flow. Prefect's record rather than a file the purge writes on success: the scale-out stack has
two workers, each with its own disk, and a file written by one is not seen by the other, while Prefect's
server is what every worker, and the operator, share.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError, ObjectNotFound

from heartrisk import names, notify
from heartrisk.settings import MailSettings
from heartrisk.summaries import Failed

OVERDUE_AFTER = timedelta(days=2)
PURGE = names.deployment_path(names.PURGE_FLOW, names.PURGE_DEPLOYMENT)


@dataclass(frozen=True)
class PurgeRecord:
    """What Prefect knows of the purge: when its deployment was made, when its newest run completed."""

    deployed: datetime
    last_success: datetime | None

    def overdue(self, now: datetime) -> bool:
        """No success for more than two days: since the last one, or since the deployment when none yet."""
        return now - (self.last_success or self.deployed) > OVERDUE_AFTER


@task(name="check-retention", cache_policy=NO_CACHE)
def purge_record() -> PurgeRecord | None:
    """The purge's record on this run's Prefect server; None when it has no purge deployment (a temporary
    server, started for a monitor run by hand): nothing to check there."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(PURGE)
        except ObjectNotFound:
            return None
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[names.PURGE_FLOW])),
            flow_run_filter=FlowRunFilter(state={"type": FlowRunFilterStateType(any_=[StateType.COMPLETED])}),
            sort=FlowRunSort.END_TIME_DESC,
            limit=1,
        )
    return PurgeRecord(deployment.created or datetime.now(UTC), runs[0].end_time if runs else None)


def overdue_message(record: PurgeRecord, now: datetime) -> notify.Message:
    """Since when, and what to look at: the deployment's runs in the Prefect UI, or a purge run now."""
    if record.last_success is None:
        since = f"has not succeeded once since it was deployed {_ago(record.deployed, now)}"
    else:
        since = f"last succeeded {_ago(record.last_success, now)}"
    lines = [
        f"The daily purge of served data older than the retention period ({PURGE}) {since}.",
        "Until it runs, predictions, reports, snapshots, monitoring runs and alert e-mails older than the period "
        "are kept. In the Prefect UI, look at the deployment: paused, no worker on its pool, or runs that "
        "crashed. `heartrisk predictions purge` purges now.",
    ]
    return notify.plain_message(f"HeartRisk: the retention purge has not succeeded for {_days(record, now)}", lines)


async def mail_if_overdue(
    record: PurgeRecord | Failed | None,
    mail: MailSettings,
    recipients: Sequence[str],
    block: str | None,
    now: datetime | None = None,
) -> bool:
    """Mail the operator when the purge is overdue (through the monitor's block and recipients); True if sent."""
    now = now or datetime.now(UTC)
    if not isinstance(record, PurgeRecord) or not record.overdue(now):
        return False
    message = overdue_message(record, now)
    _logger().warning(message.subject)
    if not recipients:
        _logger().warning("No recipients (--recipient or HEARTRISK_EMAIL_TO): the overdue purge is not mailed.")
        return False
    await notify.send(message, mail, recipients=recipients, block=block)
    return True


def _ago(moment: datetime, now: datetime) -> str:
    return f"on {moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({(now - moment) / timedelta(days=1):.1f} days ago)"


def _days(record: PurgeRecord, now: datetime) -> str:
    return f"{(now - (record.last_success or record.deployed)) / timedelta(days=1):.1f} days"


def _logger() -> logging.Logger | logging.LoggerAdapter:
    """The run's logger (shown in the Prefect UI) inside a flow; this module's outside one."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)
