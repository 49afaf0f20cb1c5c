"""The prediction log in a SQLite file: the embedded default, for one host.

SQLite in WAL mode: many gunicorn workers append at once, while the monitoring flow reads a time
window. Each writing thread keeps its own connection: opening and closing one per request cost more
than the insert, because closing the last connection checkpoints the WAL into the database file.
Writers take turns on a lock file (``flock``) before they write: SQLite would serialise them too, but
its busy handler sleeps 1, 2, 5, 10 ms between tries, which put the 99th percentile of one append at
8 ms with two workers; waiting in the kernel, it is 0.16 ms. The busy timeout stays, for writers that
do not take the lock.

Durability (SQLite's ``PRAGMA synchronous``, HEARTRISK_SQLITE_SYNCHRONOUS): in WAL mode a commit is in
the WAL file before it returns, so a killed process or worker loses nothing committed under either
setting, and neither can corrupt the file. FULL (the default) also syncs the WAL to disk at every commit,
so a power cut or an OS crash loses nothing acknowledged either; NORMAL syncs only at checkpoints and can
lose the commits since the last one (about 250 requests). The sync is taken inside the write turn, so
the disk's sync rate bounds the app's: FULL gave 0.67x to 0.75x NORMAL's throughput at saturation here
(docs/BENCHMARKS.md), a price paid for the reason PostgreSQL's commits are synchronous.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from heartrisk.predlog.base import COLUMNS, PredictionLog, Rows
from heartrisk.predlog.migrate import (
    BUSY_TIMEOUT_SECONDS,
    CURRENT_QUERY,
    MigrationFailed,
    flocked,
    is_current,
    open_lock_file,
    upgrade_sqlite,
)
from heartrisk.settings import SQLITE_SYNCHRONOUS, SQLITE_SYNCHRONOUS_DEFAULT, SqliteSynchronous

if TYPE_CHECKING:
    import pyarrow as pa

_OPENING = threading.Lock()
_INSERT = f"INSERT INTO predictions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"  # noqa: S608


class SqliteLog(PredictionLog):
    """The log in one SQLite file; connections are per thread and per process (never one inherited by a fork)."""

    backend = "sqlite"
    _at = "?"
    # locked past the busy timeout, disk full, read-only, its folder cannot be made
    _unreachable = (sqlite3.OperationalError, MigrationFailed, OSError)

    def __init__(self, path: Path, synchronous: SqliteSynchronous = SQLITE_SYNCHRONOUS_DEFAULT) -> None:
        super().__init__()
        if synchronous not in SQLITE_SYNCHRONOUS:  # it goes into a PRAGMA, which takes no parameters
            raise ValueError(f"synchronous must be one of {', '.join(SQLITE_SYNCHRONOUS)}, not {synchronous!r}")
        self.path = Path(path)
        self.synchronous = synchronous
        self._local = threading.local()
        self._turn: tuple[int, threading.Lock, int] | None = None  # (pid, lock of its threads, lock file)

    @property
    def where(self) -> str:
        return str(self.path)

    def _migrate(self) -> None:
        if self._is_current():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        upgrade_sqlite(self.path)

    def _is_current(self) -> bool:
        """Whether the file exists and is at the current revision (read-only: a missing file stays missing)."""
        if not self.path.is_file():
            return False
        try:
            with closing(sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
                return is_current(conn.execute(CURRENT_QUERY).fetchall())
        except sqlite3.Error:  # no version table yet, or locked: the migration's own path decides
            return False

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS)
        conn.execute(f"PRAGMA synchronous={self.synchronous}")  # per connection: see the module's docstring
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
                    self._turn = (os.getpid(), threading.Lock(), open_lock_file(self.path))
                turn = self._turn
        with turn[1], flocked(turn[2]):
            yield

    def close(self) -> None:
        local = self._local
        if getattr(local, "pid", None) == os.getpid():
            local.conn.close()
            del local.conn, local.pid

    def _insert(self, rows: Rows) -> None:
        fixed = (rows.ts, rows.request_id, rows.client_request_id, rows.model_version)
        records = zip(rows.probabilities, rows.labels, rows.features.tolist(), strict=True)
        values = ((*fixed, probability, label, *features) for probability, label, features in records)
        conn = self._writer()
        with self._my_turn(), conn:
            conn.executemany(_INSERT, values)

    @contextmanager
    def _transaction(self, *, quick: bool = False) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as conn, conn:
            yield conn

    def _since(self, start: float) -> str:
        return f"ts >= {float(start)!r}"

    def _arrow(self, query: str) -> pa.Table:
        """Imported here, so the app's workers (which only append) do not load the ADBC driver."""
        import adbc_driver_sqlite.dbapi as adbc_sqlite

        with adbc_sqlite.connect(f"{self.path.resolve().as_uri()}?mode=ro") as conn, conn.cursor() as cursor:
            cursor.execute(query)
            return cursor.fetch_arrow_table()
