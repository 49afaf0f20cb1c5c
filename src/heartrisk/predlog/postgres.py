"""The prediction log in PostgreSQL: one log for app replicas on several hosts.

Writes go through psycopg 3 and one connection pool per process (``psycopg_pool``), made on first use
in that process: a pool's threads and sockets must not cross gunicorn's fork. The pool reconnects by
itself after PostgreSQL restarts: a connection that sat idle for a while is checked with an empty query
before use, so a quiet app finds its stale connections replaced, not failed; under load the check is
skipped (it cost half of an append here), and a write on a connection broken under it fails. While the
server is down a write waits at most ``POOL_WAIT_SECONDS`` for a connection and then fails with
:class:`~heartrisk.predlog.LogUnavailable` (the app answers 503: nothing is served unlogged).

Commits are synchronous (PostgreSQL's default): an answered request's row is on the server's disk, so
a killed or crashed database server loses none of them. A durable commit waits for a WAL flush, and
a transaction per request costs the server CPU the app's own cores share on a small machine. So small
requests are committed in groups (:class:`GroupCommit`): one writer thread per process takes the rows of
every request in flight, inserts them in one statement and one transaction, and only then lets each
request go on to answer; one flush, one round trip and one transaction serve them all (the server's CPU
per request fell by a third here: docs/BENCHMARKS.md). A request of
``COPY_FROM_ROWS`` records or more is written by its own thread with COPY, in its own transaction.

Reads for monitoring go through ADBC (``adbc-driver-postgresql``, binary COPY into Arrow columns).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

import pandas as pd
import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from heartrisk.predlog import COLUMNS, PredictionLog, Purged, Rows
from heartrisk.predlog.migrate import (
    CONNECT_TIMEOUT_SECONDS,
    CURRENT_QUERY,
    MigrationFailed,
    is_current,
    upgrade_postgres,
)
from heartrisk.schema import FEATURE_NAMES

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import pyarrow as pa

POOL_MAX = 8  # above the app's threads per worker (4), so a request never waits for a busy connection
POOL_WAIT_SECONDS = 5.0  # a request waits this long for a connection before it is answered 503
PING_WAIT_SECONDS = 2.0
RECONNECT_SECONDS = 10.0  # the pool retries a failed connection with backoff for this long, then anew on demand
IDLE_CHECK_SECONDS = 2.0  # a connection idle for longer is checked before use
COPY_FROM_ROWS = 64  # a request with this many records or more is written alone, with COPY
GROUP_MAX_ROWS = 512  # at most this many rows in one group commit (PostgreSQL takes 65 535 parameters)
COMMIT_WAIT_SECONDS = POOL_WAIT_SECONDS + 10.0  # a request waits this long for its group's commit, then fails
_COPY = f"COPY predictions ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"
_COPY_TYPES = ("timestamptz", "text", "text", "float8", "int2", *("float8" for _ in FEATURE_NAMES))


class PostgresLog(PredictionLog):
    """The log in a PostgreSQL database, given as a ``postgresql://`` URL with user, password, host, port, database."""

    backend = "postgresql"
    _unreachable = (psycopg.OperationalError, MigrationFailed)  # refused, reset, shut down, pool timeout

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self._pool: ConnectionPool | None = None
        self._pid: int | None = None
        self._pool_lock = threading.Lock()
        self._writer: GroupCommit | None = None

    @property
    def where(self) -> str:
        info = conninfo_to_dict(self.url)
        user = f"{info['user']}@" if info.get("user") else ""
        port = f":{info['port']}" if info.get("port") else ""
        return f"postgresql://{user}{info.get('host', '')}{port}/{info.get('dbname', '')}"

    def _connections(self) -> ConnectionPool:
        """This process's pool; a fork gets a new one (the parent's is left alone, its sockets are not ours)."""
        if self._pid != os.getpid():
            with self._pool_lock:
                if self._pid != os.getpid():
                    self._pool = ConnectionPool(
                        self.url,
                        min_size=1,
                        max_size=POOL_MAX,
                        kwargs={
                            "autocommit": True,
                            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
                            "application_name": "heartrisk",
                        },
                        check=_check_if_idle,
                        reset=_mark_idle,
                        timeout=POOL_WAIT_SECONDS,
                        reconnect_timeout=RECONNECT_SECONDS,
                        name="heartrisk-predictions",
                        open=True,
                    )
                    self._pid = os.getpid()
        assert self._pool is not None
        return self._pool

    def close(self) -> None:
        if self._writer is not None and self._writer.pid == os.getpid():
            self._writer.stop()
        if self._pool is not None and self._pid == os.getpid():
            self._pool.close()
        self._pool, self._pid, self._writer = None, None, None

    def _migrate(self) -> None:
        if not self._is_current():
            upgrade_postgres(self.url)

    def _is_current(self) -> bool:
        """Whether the log is at the current revision, on a connection of its own (the monitor reads through
        ADBC and needs no pool); a refused connection raises, as the migration would."""
        with psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
            try:
                return is_current(conn.execute(CURRENT_QUERY).fetchall())
            except psycopg.errors.UndefinedTable:
                return False

    def _insert(self, rows: Rows) -> None:
        if len(rows.labels) < COPY_FROM_ROWS:
            self._group_commit().write(rows)
            return
        with self._connections().connection() as conn, conn.transaction(), conn.cursor().copy(_COPY) as copy:
            copy.set_types(_COPY_TYPES)
            for record in _records(rows):
                copy.write_row(record)

    def _group_commit(self) -> GroupCommit:
        """This process's writer thread (a thread does not cross a fork: the child makes its own)."""
        if self._writer is None or self._writer.pid != os.getpid():
            with self._pool_lock:
                if self._writer is None or self._writer.pid != os.getpid():
                    self._writer = GroupCommit(self._connections)
        return self._writer

    def _count(self) -> int:
        with self._connections().connection() as conn:
            return int(conn.execute("SELECT count(*) FROM predictions").fetchone()[0])

    def _arrow(self, query: str) -> pa.Table:
        """A query's result as Arrow columns. The callers inline its values (numbers they computed): the
        driver streams a query through binary COPY only when it has no parameters (COPY takes none)."""
        import adbc_driver_postgresql.dbapi as adbc_postgres

        with adbc_postgres.connect(self.url) as conn, conn.cursor() as cursor:
            cursor.execute(query)
            return cursor.fetch_arrow_table()

    def _since(self, start: float) -> str:
        return f"ts >= {_time(start)}"

    def _read(self, start: float) -> pd.DataFrame:
        columns = ", ".join(("date_part('epoch', ts) AS ts", *COLUMNS[1:]))
        query = f"SELECT {columns} FROM predictions WHERE {self._since(start)} ORDER BY id"  # noqa: S608
        return self._arrow(query).to_pandas()

    def _purge(self, before: float) -> Purged:
        with self._connections().connection() as conn, conn.transaction():
            deleted = conn.execute("DELETE FROM predictions WHERE ts < to_timestamp(%s)", (before,)).rowcount
            remaining = conn.execute("SELECT count(*) FROM predictions").fetchone()[0]
        return Purged(int(deleted), int(remaining))

    def _ping(self) -> None:
        with self._connections().connection(timeout=PING_WAIT_SECONDS) as conn:
            conn.execute("SELECT 1 FROM predictions LIMIT 1")


@dataclass
class _Pending:
    """One request's rows waiting for their group's commit, and how it ended."""

    rows: Rows
    done: threading.Event = field(default_factory=threading.Event)
    error: Exception | None = None


class GroupCommit:
    """One writer thread per process that commits the rows of all requests in flight together.

    :meth:`write` returns only after the transaction holding its rows has committed, and raises what
    the commit raised otherwise, so a request is never answered before its row is durable. While the
    writer commits one group the next requests queue up and form the next group: the busier the app,
    the more rows share a WAL flush, and a lone request waits for nothing but its own commit.
    """

    def __init__(self, connections: Callable[[], ConnectionPool]) -> None:
        self.pid = os.getpid()
        self._connections = connections
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="heartrisk-group-commit", daemon=True)
        self._thread.start()

    def write(self, rows: Rows) -> None:
        pending = _Pending(rows)
        self._queue.put(pending)
        if not pending.done.wait(COMMIT_WAIT_SECONDS):
            raise psycopg.OperationalError(f"no commit within {COMMIT_WAIT_SECONDS:g} s")
        if (error := pending.error) is not None:  # a new exception per waiting thread, the reason kept
            raise (type(error)(*error.args) if isinstance(error, psycopg.Error) else RuntimeError(error)) from error

    def stop(self) -> None:
        """Commit what is queued, then end the thread."""
        self._queue.put(None)
        self._thread.join(COMMIT_WAIT_SECONDS)

    def _run(self) -> None:
        while (first := self._queue.get()) is not None:
            group, rows, stop = [first], len(first.rows.labels), False
            while rows < GROUP_MAX_ROWS and not self._queue.empty():
                pending = self._queue.get()
                if pending is None:
                    stop = True
                    break
                group.append(pending)
                rows += len(pending.rows.labels)
            self._commit(group)
            if stop:
                return

    def _commit(self, group: list[_Pending]) -> None:
        """One INSERT of every row of the group: one statement, one transaction, one round trip."""
        values = [value for pending in group for record in _records(pending.rows) for value in record]
        try:
            with self._connections().connection() as conn:
                conn.execute(_insert_rows(len(values) // len(COLUMNS)), values)
        except Exception as exc:  # handed to every waiting request, which raises it
            for pending in group:
                pending.error = exc
        for pending in group:
            pending.done.set()


@cache
def _insert_rows(rows: int) -> str:
    """A multi-row INSERT (psycopg prepares each size on its fifth use: a handful of sizes recur)."""
    record = f"({', '.join('%s' for _ in COLUMNS)})"
    return f"INSERT INTO predictions ({', '.join(COLUMNS)}) VALUES {', '.join(record for _ in range(rows))}"  # noqa: S608


def _records(rows: Rows) -> Iterator[tuple[Any, ...]]:
    """A request's rows as column values in :data:`COLUMNS` order."""
    stamp = datetime.fromtimestamp(rows.ts, UTC)
    for probability, label, features in zip(rows.probabilities, rows.labels, rows.features.tolist(), strict=True):
        yield (stamp, rows.request_id, rows.model_version, probability, label, *features)


def _mark_idle(conn: psycopg.Connection) -> None:
    conn.heartrisk_idle_since = time.monotonic()  # type: ignore[attr-defined]


def _check_if_idle(conn: psycopg.Connection) -> None:
    """One empty query for a connection back from a rest (PostgreSQL may have restarted meanwhile); a
    connection busy a moment ago goes out unchecked. A new one has no mark and is checked once."""
    if time.monotonic() - getattr(conn, "heartrisk_idle_since", 0.0) > IDLE_CHECK_SECONDS:
        ConnectionPool.check_connection(conn)


def _time(unix: float) -> str:
    """A UNIX time as a SQL literal; only ever a float this module computed, never user text."""
    return f"to_timestamp({float(unix)!r})"
