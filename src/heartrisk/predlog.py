"""The log of served predictions: what monitoring compares with the reference data.

SQLite in WAL mode: many gunicorn workers append at once, while the monitoring flow reads a time
window. Each writing thread keeps its own connection: opening and closing one per request cost more
than the insert, because closing the last connection checkpoints the WAL into the database file.
Writers take turns on a lock file (``flock``) before they write: SQLite would serialise them too, but
its busy handler sleeps 1, 2, 5, 10 ms between tries, which put the 99th percentile of one append
at 8 ms with two workers; waiting in the kernel, it is 0.16 ms. The busy timeout stays, for writers
that do not take the lock.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from itertools import repeat
from pathlib import Path

import numpy as np
import pandas as pd

from heartrisk.schema import FEATURE_NAMES

BUSY_TIMEOUT_SECONDS = 30
_OPENING = threading.Lock()
COLUMNS = ("ts", "request_id", "model_version", "probability", "label", *FEATURE_NAMES)
_INSERT = f"INSERT INTO predictions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"  # noqa: S608


class PredictionLog:
    """Append-only table of predictions; safe across threads and forks (connections are per thread and pid)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._turn: tuple[int, threading.Lock, int] | None = None  # (pid, lock of its threads, lock file)
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

    def _writer(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use in this process (never one inherited by a fork)."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.conn, local.pid = self._connect(), os.getpid()
        return local.conn

    @contextmanager
    def _my_turn(self) -> Iterator[None]:
        """Write alone: one thread of this process at a time, and one process at a time (the lock file)."""
        turn = self._turn
        if turn is None or turn[0] != os.getpid():  # a lock file opened before a fork would be shared
            with _OPENING:
                if self._turn is None or self._turn[0] != os.getpid():
                    lock_file = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
                    self._turn = (os.getpid(), threading.Lock(), lock_file)
                turn = self._turn
        with turn[1]:
            fcntl.flock(turn[2], fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(turn[2], fcntl.LOCK_UN)

    def append(
        self,
        features: np.ndarray,
        probabilities: Iterable[float],
        labels: Iterable[int],
        *,
        model_version: str,
        request_id: str,
    ) -> int:
        """Append one row per record (rows of ``features`` in schema order) in one transaction."""
        columns = np.asarray(features, dtype=float).T.tolist()
        probabilities, labels = [float(p) for p in probabilities], [int(lbl) for lbl in labels]
        if not len(probabilities) == len(labels) == len(columns[0]):
            raise ValueError("one probability and one label per record")
        now = time.time()
        rows = zip(repeat(now), repeat(request_id), repeat(model_version), probabilities, labels, *columns)
        conn = self._writer()
        with self._my_turn(), conn:
            conn.executemany(_INSERT, rows)
        return len(labels)

    def count(self) -> int:
        with closing(self._connect()) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])

    def read(self, *, since: datetime | None = None, days: float | None = None) -> pd.DataFrame:
        """Predictions made since a time (or in the last ``days``), oldest first."""
        start = _start(since, days)
        with closing(self._connect()) as conn:
            frame = pd.read_sql_query(
                f"SELECT {', '.join(COLUMNS)} FROM predictions WHERE ts >= ? ORDER BY id",  # noqa: S608
                conn,
                params=(start,),
            )
        frame["ts"] = pd.to_datetime(frame["ts"], unit="s", utc=True)
        return frame

    def features(self, *, since: datetime | None = None, days: float | None = None) -> pd.DataFrame:
        """Only the 13 features of :meth:`read`, as floats: what monitoring compares.

        Read through ADBC straight into Arrow columns: Python's sqlite3 makes a float object per cell,
        which took 0.38 s for 100 000 rows against 0.1 s here, and several times the memory. Imported
        here, so the app's workers (which only append) do not load the driver.
        """
        import adbc_driver_sqlite.dbapi as adbc_sqlite
        import pyarrow as pa

        query = f"SELECT {', '.join(FEATURE_NAMES)} FROM predictions WHERE ts >= ? ORDER BY id"  # noqa: S608
        with adbc_sqlite.connect(f"{self.path.resolve().as_uri()}?mode=ro") as conn, conn.cursor() as cursor:
            cursor.execute(query, (_start(since, days),))
            table = cursor.fetch_arrow_table()
        floats = pa.schema([(name, pa.float64()) for name in FEATURE_NAMES])  # also types an empty window
        return table.cast(floats).to_pandas()


def _start(since: datetime | None, days: float | None) -> float:
    """The window's start as a UNIX time (0: everything)."""
    if since is None and days is not None:
        since = datetime.now(UTC) - timedelta(days=days)
    return since.timestamp() if since is not None else 0.0
