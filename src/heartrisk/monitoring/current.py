"""The data a monitoring run watches: a CSV, or the prediction log's window (sampled in the database)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from heartrisk.data import read_schema_csv, validate_served
from heartrisk.drift import LABEL, PROBABILITY
from heartrisk.predlog import open_log
from heartrisk.settings import Settings


@dataclass(frozen=True)
class Current:
    """The data to watch, where it came from, and what its window held (a CSV is a window of its own rows)."""

    frame: pd.DataFrame  # the schema's columns; probability and label too when they were served
    source: str
    rows: int  # rows in the window
    versions: dict[str, int] = field(default_factory=dict)  # rows per model version in the window

    @property
    def sampled_rows(self) -> int | None:
        """Rows compared when the window was sampled, else None."""
        return len(self.frame) if len(self.frame) < self.rows else None


@task(name="read-current-data", cache_policy=NO_CACHE)
def read_current(current: str | None, settings: Settings, window_days: float) -> Current:
    """The data to watch: a given CSV, or what the app served in the last ``window_days`` (sampled in the
    database when the window holds more than ``HEARTRISK_DRIFT_MAX_ROWS`` rows)."""
    if current:
        frame = read_schema_csv(current)
        return Current(frame, current, len(frame))
    log = open_log(settings.predictions_db)
    try:
        window = log.window(days=window_days, max_rows=settings.drift.max_rows, seed=settings.drift.seed)
    finally:
        log.close()
    source = f"prediction log {log.where}, last {window_days:g} days"
    frame = validate_served(window.frame, source)
    frame[PROBABILITY], frame[LABEL] = window.frame[PROBABILITY], window.frame[LABEL].astype("int64")
    return Current(frame, source, window.rows, window.versions)
