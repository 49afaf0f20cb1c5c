"""What one purge did, kind by kind: the counts of its JSON line, the sentences of its log, what failed.

One type for the command and the daily flow, so both say the same thing, and a script reading the JSON line
sees every kind: a number deleted, or ``null`` and the reason under ``failed`` (nothing skipped in silence).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from heartrisk.summaries import Failed

# Every place that keeps a copy of served data, or what a monitoring run derived from it, in purge order:
# the log first (the data itself), then what the monitoring runs made of it.
KINDS = ("predictions", "snapshots", "reports", "mlflow_runs", "mails")

WHAT = {
    "predictions": "predictions",
    "snapshots": "Evidently snapshots",
    "reports": "HTML report files",
    "mlflow_runs": "MLflow monitoring runs (with their artifacts)",
    "mails": "messages of the mail sink",
}


@dataclass(frozen=True)
class Swept:
    """One kind's purge: how many it deleted, from where, and what stays on purpose.

    ``left`` counts what this kind could not remove for good and says so in ``note`` (MLflow's run records,
    marked deleted, when the purge cannot reach MLflow's database); ``remaining`` is the rows the log keeps.
    """

    deleted: int
    where: str
    left: int = 0
    note: str = ""
    remaining: int | None = None


@dataclass(frozen=True)
class PurgeResult:
    """Every kind's outcome for one period (0 or less: retention off, only the log is looked at)."""

    older_than_days: float
    swept: Mapping[str, Swept] = field(default_factory=dict)
    failed: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, older_than_days: float, outcomes: Mapping[str, Swept | Failed]) -> PurgeResult:
        swept = {kind: done for kind, done in outcomes.items() if isinstance(done, Swept)}
        failed = {kind: done.reason for kind, done in outcomes.items() if isinstance(done, Failed)}
        return cls(older_than_days, swept, failed)

    @property
    def ok(self) -> bool:
        return not self.failed

    def count(self, kind: str) -> int | None:
        """What ``kind`` deleted; None when it failed; 0 when retention is off (it was not looked at)."""
        if kind in self.failed:
            return None
        return self.swept[kind].deleted if kind in self.swept else 0

    def to_json(self) -> dict[str, Any]:
        """The JSON line: ``deleted`` and ``remaining`` are the log's rows (as before), then one count per kind."""
        log = self.swept.get("predictions")
        mlflow = self.swept.get("mlflow_runs")
        counts: dict[str, Any] = {
            "deleted": self.count("predictions"),
            "remaining": log.remaining if log else None,
            "older_than_days": self.older_than_days,
        }
        counts |= {kind: self.count(kind) for kind in KINDS[1:]}
        counts["mlflow_runs_awaiting_gc"] = mlflow.left if mlflow else (None if "mlflow_runs" in self.failed else 0)
        return {**counts, "failed": dict(self.failed)}

    def lines(self) -> list[str]:
        """One sentence per kind, failures last, each naming what failed and why."""
        log = self.swept.get("predictions")
        if self.older_than_days <= 0 and log is not None:
            return [f"Retention is off (0 days): nothing deleted from {log.where}, {log.remaining} rows kept."]
        said = [self._line(kind, done) for kind in KINDS if (done := self.swept.get(kind)) is not None]
        return said + [f"FAILED: {WHAT[kind]}: {reason}" for kind, reason in self.failed.items()]

    def failure(self) -> str:
        """Why the purge failed, one clause per kind (empty when it did not)."""
        return "; ".join(f"{WHAT[kind]}: {reason}" for kind, reason in self.failed.items())

    def _line(self, kind: str, done: Swept) -> str:
        line = f"Deleted {done.deleted} {WHAT[kind]} older than {self.older_than_days:g} days from {done.where}"
        if done.remaining is not None:
            line += f"; {done.remaining} remain"
        return f"{line}." + (f" {done.note}" if done.note else "")
