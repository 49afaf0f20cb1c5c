"""The prediction log in PostgreSQL: one log for app replicas on several hosts.

Writes go through psycopg 3 and one connection pool per process (``psycopg_pool``), made on first use
in that process: a pool's threads and sockets must not cross gunicorn's fork. A request's records go
in one statement and one transaction: an INSERT for one record, COPY for a batch. The pool reconnects
by itself after PostgreSQL restarts: a connection that sat idle for a while is checked with an empty
query before use, so a quiet app finds its stale connections replaced, not failed; under load the
check is skipped (it cost half of an append here), and a write on a connection broken under it fails.
While the server is down a write waits at most ``POOL_WAIT_SECONDS`` for a connection and then fails
with :class:`~heartrisk.predlog.LogUnavailable` (the app answers 503: nothing is served unlogged).

Commits are synchronous (PostgreSQL's default): an answered request's row is on the server's disk, so
a killed or crashed database server loses none of them. Each request's commit is its own transaction;
PostgreSQL already lets concurrent commits share a WAL flush. A writer thread per process that committed
the requests in flight together was tried and taken out: it changed neither throughput nor latency
measurably here (docs/BENCHMARKS.md), so it was not worth a thread and a queue. A server that must take
many small commits can group their flushes further with its own ``commit_delay`` / ``commit_siblings``.

Reads for monitoring go through ADBC (``adbc-driver-postgresql``, binary COPY into Arrow columns).

TLS: both drivers are libpq, so both honour libpq's own ``PGSSLMODE`` and ``PGSSLROOTCERT`` (the scale-out
stack sets ``verify-full`` and its CA) or the same parameters in the URL; nothing here needs to know
(tests/integration/test_tls.py).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from heartrisk.predlog.base import COLUMNS, PredictionLog, Rows
from heartrisk.predlog.migrate import (
    CONNECT_TIMEOUT_SECONDS,
    CURRENT_QUERY,
    MigrationFailed,
    is_current,
    upgrade_postgres,
)
from heartrisk.schema import FEATURE_NAMES

if TYPE_CHECKING:
    import pyarrow as pa

POOL_MAX = 8  # above the app's threads per worker (4), so a request never waits for a busy connection
POOL_WAIT_SECONDS = 5.0  # a request waits this long for a connection before it is answered 503
PING_WAIT_SECONDS = 2.0
RECONNECT_SECONDS = 10.0  # the pool retries a failed connection with backoff for this long, then anew on demand
IDLE_CHECK_SECONDS = 2.0  # a connection idle for longer is checked before use
_INSERT = f"INSERT INTO predictions ({', '.join(COLUMNS)}) VALUES ({', '.join('%s' for _ in COLUMNS)})"  # noqa: S608
_COPY = f"COPY predictions ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"
_COPY_TYPES = ("timestamptz", "text", "varchar", "text", "float8", "int2", *("float8" for _ in FEATURE_NAMES))


class PostgresLog(PredictionLog):
    """The log in a PostgreSQL database, given as a ``postgresql://`` URL with user, password, host, port, database."""

    backend = "postgresql"
    _at = "to_timestamp(%s)"
    _unreachable = (psycopg.OperationalError, MigrationFailed)  # refused, reset, shut down, pool timeout

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self._pool: ConnectionPool | None = None
        self._pid: int | None = None
        self._pool_lock = threading.Lock()

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
                        timeout=POOL_WAIT_SECONDS,
                        reconnect_timeout=RECONNECT_SECONDS,
                        name="heartrisk-predictions",
                        open=True,
                    )
                    self._pid = os.getpid()
        assert self._pool is not None
        return self._pool

    def close(self) -> None:
        if self._pool is not None and self._pid == os.getpid():
            self._pool.close()
        self._pool, self._pid = None, None

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
        stamp = datetime.fromtimestamp(rows.ts, UTC)
        records = zip(rows.probabilities, rows.labels, rows.features.tolist(), strict=True)
        fixed = (stamp, rows.request_id, rows.client_request_id, rows.model_version)
        with self._connections().connection() as conn:
            if len(rows.labels) == 1:
                probability, label, features = next(records)
                conn.execute(_INSERT, (*fixed, probability, label, *features))
                return
            with conn.transaction(), conn.cursor().copy(_COPY) as copy:
                copy.set_types(_COPY_TYPES)
                for probability, label, features in records:
                    copy.write_row((*fixed, probability, label, *features))

    @contextmanager
    def _transaction(self, *, quick: bool = False) -> Iterator[psycopg.Connection]:
        with self._connections().connection(timeout=PING_WAIT_SECONDS if quick else None) as conn, conn.transaction():
            yield conn

    def _arrow(self, query: str) -> pa.Table:
        """A query's result as Arrow columns. The callers inline its values (numbers they computed): the
        driver streams a query through binary COPY only when it has no parameters (COPY takes none)."""
        import adbc_driver_postgresql.dbapi as adbc_postgres

        with adbc_postgres.connect(self.url) as conn, conn.cursor() as cursor:
            cursor.execute(query)
            return cursor.fetch_arrow_table()

    def _since(self, start: float) -> str:
        return f"ts >= {_time(start)}"


def _check_if_idle(conn: psycopg.Connection) -> None:
    """One empty query for a connection back from a rest (PostgreSQL may have restarted meanwhile); a
    connection handed out a moment ago goes out unchecked. A new one has no mark and is checked once.

    The rest is measured from the last hand-out, which is never later than the last return: a request
    holds its connection for milliseconds. (Marking the return instead needs the pool's ``reset``
    callback, which makes every return a task for the pool's worker threads: a thread hop per request.)
    """
    now = time.monotonic()
    last = getattr(conn, "heartrisk_handed_out", 0.0)
    conn.heartrisk_handed_out = now  # type: ignore[attr-defined]
    if now - last > IDLE_CHECK_SECONDS:
        ConnectionPool.check_connection(conn)


def _time(unix: float) -> str:
    """A UNIX time as a SQL literal; only ever a float this module computed, never user text."""
    return f"to_timestamp({float(unix)!r})"
