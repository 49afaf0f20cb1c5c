"""What the batch jobs last did, for Prometheus: pushed to a Pushgateway when a run succeeds.

The monitoring flow, the retention purge and ``heartrisk backup`` are batch jobs. A flow run is a process a
Prefect worker starts on whichever worker replica picks the run up (the scale-out stack has two), and it
exits when the run ends: there is nothing long-lived for Prometheus to scrape. The Pushgateway is
Prometheus's own answer for batch jobs: a run pushes its figures over HTTP, the gateway keeps the newest
push of each job, and Prometheus scrapes the gateway like any target (``honor_labels: true`` keeps the
job's name). The alternative, a textfile that a worker serves (node_exporter's textfile collector), would be
written on the disk of the replica that ran the flow: each worker replica would serve its own file, stale
on the replica that did not run last, and a rule would have to find the newest across them; a replaced
worker or a lost volume would lose the record. The gateway is one place every replica writes to, it needs
no volume shared between workers, and Debian packages it (``prometheus-pushgateway`` 1.5).

A push replaces the job's group (``push_to_gateway``: HTTP PUT), grouped by job only, so what Prometheus
sees is the newest successful run, from any replica. Only runs that succeed push: a run that fails says so
in Prefect and in its e-mail, and the alert rules watch the age of the last success
(``deploy/prometheus/rules.yml``: ``HeartRiskMonitoringStale``, ``HeartRiskPurgeStale``,
``HeartRiskBackupStale``). A push that fails (gateway down, wrong address) is a warning in the run's log,
never a failed run: the work itself was done. ``HEARTRISK_PUSHGATEWAY_URL`` empty (the default): no push.

The values are plain samples collected at push time, not prometheus_client's ``Gauge`` objects, so a
process that happens to run with ``PROMETHEUS_MULTIPROC_DIR`` set writes nothing into the app's metrics.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from prometheus_client import push_to_gateway
from prometheus_client.core import GaugeMetricFamily

from heartrisk.purge.result import KINDS

if TYPE_CHECKING:
    from heartrisk.backup import Backup
    from heartrisk.purge.result import PurgeResult
    from heartrisk.scale_backup import Taken
    from heartrisk.summaries import MonitorSummary

MONITORING, PURGE, BACKUP = "heartrisk_monitoring", "heartrisk_purge", "heartrisk_backup"  # the jobs' names
TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Value:
    """One sample of a gauge: its name, what it means, its value, its labels."""

    name: str
    help: str
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)


class Samples:
    """The values as a collector, which is all ``push_to_gateway`` reads: one gauge family per name."""

    def __init__(self, values: Sequence[Value]) -> None:
        self.values = values

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name in dict.fromkeys(v.name for v in self.values):
            same = [v for v in self.values if v.name == name]
            family = GaugeMetricFamily(name, same[0].help, labels=sorted(same[0].labels))
            for value in same:
                family.add_metric([value.labels[k] for k in sorted(value.labels)], value.value)
            yield family


def push(url: str, job: str, values: Sequence[Value], *, timeout: float = TIMEOUT_SECONDS) -> str | None:
    """Replace ``job``'s group on the gateway at ``url`` with ``values``. None when pushed, or when ``url`` is
    empty (no gateway); else why not, in one sentence for the run's log."""
    if not url:
        return None
    try:
        push_to_gateway(url, job=job, registry=Samples(values), timeout=timeout)
    except Exception as exc:  # the run's work is done: a lost push is said, never raised
        return f"metrics of {job} not pushed to the Pushgateway at {_shown(url)}: {type(exc).__name__}: {exc}"
    return None


def _shown(url: str) -> str:
    """The gateway's address without a login, should the URL carry one."""
    parts = urlsplit(url if "//" in url else f"//{url}")
    return f"{parts.scheme + '://' if parts.scheme else ''}{parts.hostname}{f':{parts.port}' if parts.port else ''}"


def _last_success(job: str, now: float | None) -> Value:
    what = job.removeprefix("heartrisk_")
    help_text = f"When the last successful {what} run ended (Unix time)"
    return Value(f"{job}_last_success_timestamp_seconds", help_text, time.time() if now is None else now)


def monitoring(summary: MonitorSummary, now: float | None = None) -> list[Value]:
    """A monitoring run's verdict; the share only when drift was computed (enough rows)."""
    values = [
        _last_success(MONITORING, now),
        Value("heartrisk_monitoring_drift_detected", "1 when the last run found drift, else 0",
              float(summary.drift_detected)),
        Value("heartrisk_monitoring_drift_threshold", "Share of drifted columns that means drift",
              summary.threshold),
        Value("heartrisk_monitoring_current_rows", "Rows of the window the last run compared", summary.current_rows),
    ]  # fmt: skip
    if summary.share is not None:
        values.append(Value("heartrisk_monitoring_drift_share", "Share of columns that drifted", summary.share))
    return values


def purge(result: PurgeResult, now: float | None = None) -> list[Value]:
    """A purge's counts per kind, its period and the prediction log's rows left."""
    counts = {kind: count for kind in KINDS if (count := result.count(kind)) is not None}
    values = [_last_success(PURGE, now)]
    values += [Value("heartrisk_purge_deleted", "What the last purge deleted, by kind", n, {"kind": kind})
               for kind, n in counts.items()]  # fmt: skip
    values.append(Value("heartrisk_purge_retention_days", "The retention period (0: keep all)", result.older_than_days))
    if (log := result.swept.get("predictions")) is not None and log.remaining is not None:
        values.append(Value("heartrisk_purge_prediction_log_rows", "Rows the prediction log kept", log.remaining))
    return values


def backup(made: Backup | Taken, now: float | None = None) -> list[Value]:
    """A backup's size: a local archive's, or a scale-out backup set's (its files: artifacts and volume files)."""
    return [
        _last_success(BACKUP, now),
        Value("heartrisk_backup_files", "Files in the last backup", made.files),
        Value("heartrisk_backup_bytes", "Bytes of the files in the last backup, before compression", made.bytes),
    ]


def backup_found(stopped: float) -> list[Value]:
    """The newest backup a starting backup service finds in its repository: its time as the last success (a
    Pushgateway made anew, after a restore, has none; the sizes come with the next backup)."""
    return [_last_success(BACKUP, stopped)]
