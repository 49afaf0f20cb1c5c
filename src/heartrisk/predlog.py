"""The log of served predictions: what monitoring compares with the reference data.

SQLite in WAL mode: many gunicorn workers append at once (SQLite serialises the writers; the busy
timeout makes them wait instead of failing), while the monitoring flow reads a time window.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Mapping
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from heartrisk.schema import FEATURE_NAMES

BUSY_TIMEOUT_SECONDS = 30
COLUMNS = ("ts", "request_id", "model_version", "probability", "label", *FEATURE_NAMES)


class PredictionLog:
    """Append-only table of predictions; one connection per call keeps it safe across forks."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        features = ", ".join(f"{name} REAL NOT NULL" for name in FEATURE_NAMES)
        with closing(self._connect()) as conn, conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS predictions ("
                "id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, request_id TEXT NOT NULL, "
                f"model_version TEXT NOT NULL, probability REAL NOT NULL, label INTEGER NOT NULL, {features})"
            )
            conn.execute("CREATE INDEX IF NOT EXISTS predictions_ts ON predictions (ts)")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS)
        # In WAL mode NORMAL cannot corrupt the database and a crashed or killed process loses nothing
        # committed; only a power cut can drop the last transactions. FULL costs a disk sync per request.
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def append(
        self,
        records: Iterable[Mapping[str, Any]],
        probabilities: Iterable[float],
        labels: Iterable[int],
        *,
        model_version: str,
        request_id: str,
    ) -> int:
        """Append one row per record in one transaction; returns the number of rows written."""
        now = time.time()
        rows = [
            (now, request_id, model_version, float(p), int(lbl), *(float(r[n]) for n in FEATURE_NAMES))
            for r, p, lbl in zip(records, probabilities, labels, strict=True)
        ]
        placeholders = ", ".join("?" for _ in COLUMNS)
        with closing(self._connect()) as conn, conn:
            conn.executemany(f"INSERT INTO predictions ({', '.join(COLUMNS)}) VALUES ({placeholders})", rows)  # noqa: S608
        return len(rows)

    def count(self) -> int:
        with closing(self._connect()) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])

    def read(self, *, since: datetime | None = None, days: float | None = None) -> pd.DataFrame:
        """Predictions made since a time (or in the last ``days``), oldest first."""
        if since is None and days is not None:
            since = datetime.now(UTC) - timedelta(days=days)
        start = since.timestamp() if since is not None else 0.0
        with closing(self._connect()) as conn:
            frame = pd.read_sql_query(
                f"SELECT {', '.join(COLUMNS)} FROM predictions WHERE ts >= ? ORDER BY id",  # noqa: S608
                conn,
                params=(start,),
            )
        frame["ts"] = pd.to_datetime(frame["ts"], unit="s", utc=True)
        return frame
