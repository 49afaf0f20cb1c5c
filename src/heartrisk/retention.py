"""Retention: a Prefect flow that deletes, once a day, every copy of served data older than the retention
period, and what the monitoring runs derived from it (:mod:`heartrisk.purge`: one task per kind).

The flow is a deployment of its own (``purge-old-predictions``) rather than a step of the monitoring flow:
retention is a duty that must not wait on drift monitoring (a monitor that fails on SMTP, or is paused,
would otherwise stop it), its schedule and its history (what each kind deleted, per day) show on their own
in the Prefect UI, and the operator can run it alone. ``heartrisk predictions purge`` does the same without
Prefect.

A purge that fails mails the operator through the drift alerts' e-mail block and recipients, then fails:
the flow catches, mails and raises again (simpler than a Prefect ``on_failure`` hook, which runs outside
the flow's own context and logger), so a failure anywhere after the settings are read (a kind's store
unreachable, an error of ours) is mailed, and the Prefect UI still shows the run failed with its reason.
A purge that does not run at all (paused, no worker, crashed) cannot say so itself: the monitoring flow
watches for that (:mod:`heartrisk.monitoring.overdue`), and so does Prometheus, from the time and the counts
each successful purge pushes to its Pushgateway (:mod:`heartrisk.pushed`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from heartrisk import names, notify, pushed
from heartrisk.config import get_settings
from heartrisk.purge import PurgeResult, Swept, cutoff, kinds_for, purge_one, reason
from heartrisk.settings import MailSettings, Settings
from heartrisk.summaries import Failed


@task(name="purge", task_run_name="purge-{kind}", cache_policy=NO_CACHE)
def purge_kind(kind: str, settings: Settings, older_than_days: float, before: datetime) -> Swept:
    return purge_one(kind, settings, older_than_days, before)


# Async on purpose, like the other flows: Prefect's sync engine waits up to a second on its heartbeat thread.
@flow(name=names.PURGE_FLOW)
async def purge_flow(older_than_days: float | None = None) -> dict[str, Any]:
    """Delete everything older than ``older_than_days`` (default HEARTRISK_PREDICTIONS_RETENTION_DAYS; 0 keeps
    all); mail the operator and fail when any kind could not be purged."""
    settings = get_settings()
    days = settings.predictions_retention_days if older_than_days is None else older_than_days
    result = None
    try:
        result = await purge_every_kind(settings, days)
        get_run_logger().info("\n".join(result.lines()))
        if not result.ok:
            raise RuntimeError(f"the purge failed: {result.failure()}")
    except Exception as exc:
        await mail_failure(settings.mail, exc, result)
        raise
    if problem := pushed.push(settings.pushgateway_url, pushed.PURGE, pushed.purge(result)):
        get_run_logger().warning(problem)
    return result.to_json()


async def purge_every_kind(settings: Settings, days: float) -> PurgeResult:
    """One task per kind, one after the other; a kind that fails is kept with its reason, the others run."""
    before = cutoff(days)
    outcomes: dict[str, Swept | Failed] = {}
    for kind in kinds_for(days):
        state = purge_kind(kind, settings, days, before, return_state=True)
        done = await state.aresult(raise_on_failure=False)
        outcomes[kind] = done if state.is_completed() else Failed(reason(done) if done else str(state.name))
    return PurgeResult.of(days, outcomes)


def failure_message(error: BaseException, result: PurgeResult | None) -> notify.Message:
    """What the operator reads: what failed and why, what the purge did delete, and what happens next."""
    subject = "HeartRisk: the retention purge failed"
    lines = [f"The daily purge of served data older than the retention period failed: {reason(error)}."]
    if result is not None:
        lines += ["What each kind did:", *(f"  - {line}" for line in result.lines())]
    lines += [
        "What could not be deleted is still there. The deployment purge-old-predictions runs again at its next "
        "schedule; once the cause is fixed, `heartrisk predictions purge` runs the same purge now.",
    ]
    return notify.plain_message(subject, lines)


async def mail_failure(mail: MailSettings, error: BaseException, result: PurgeResult | None) -> None:
    """Mail the failure to the drift alerts' recipients through their block; say so when there is no one to
    mail, and fail with both reasons when the e-mail cannot be sent either."""
    if not mail.recipients:
        get_run_logger().warning("No recipients (HEARTRISK_EMAIL_TO): the purge's failure is not mailed.")
        return
    try:
        await notify.send(failure_message(error, result), mail, recipients=mail.recipients)
    except Exception as unsent:
        raise RuntimeError(f"{reason(error)}; and the failure e-mail was not sent: {reason(unsent)}") from error
