"""The purge of every copy of served data and of what the monitoring runs derived from it, kind by kind.

``HEARTRISK_PREDICTIONS_RETENTION_DAYS`` bounds them all: the prediction log's rows, the Evidently
snapshots of the monitoring project, the HTML reports, the MLflow runs of the monitoring experiment with
their artifacts, and the local mail sink's messages. No Prefect here: ``heartrisk predictions purge`` runs
it as is, the daily flow (:mod:`heartrisk.retention`) as one task per kind.
"""

from heartrisk.purge.kinds import cutoff, kinds_for, purge_everything, purge_one, reason
from heartrisk.purge.result import KINDS, WHAT, PurgeResult, Swept

__all__ = ["KINDS", "WHAT", "PurgeResult", "Swept", "cutoff", "kinds_for", "purge_everything", "purge_one", "reason"]
