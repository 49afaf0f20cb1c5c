"""The prediction log's schema, kept by Alembic migrations (the scripts in ``migrations/``).

Alembic is SQLAlchemy's migration tool and already comes with MLflow, which migrates its own database
with it; the same revision scripts build the table on SQLite and on PostgreSQL, and a later change
(a column, an index) is one more revision that every existing log picks up on its next start.

Several gunicorn workers, or several app replicas, may start at once on a fresh database: each one
migrates inside a transaction that first takes a lock, so the first one creates the table and the
others, once they get the lock, find it at the head revision and do nothing. On PostgreSQL the lock
is a transaction-level advisory lock; on SQLite the transaction itself is ``BEGIN EXCLUSIVE``.
Alembic's version table has a name of its own, so the log can share a database with MLflow's tables.

To change the schema, add a revision next to ``versions/0003_client_request_id.py`` (its
``down_revision`` is the previous one) and set :data:`CURRENT_REVISION` to it; ``upgrade`` runs it
wherever the log is opened.

A log already at :data:`CURRENT_REVISION` is left alone after one plain query (:data:`CURRENT_QUERY`),
and SQLAlchemy and Alembic are imported only when a log is behind: importing them costs about 0.7 s
of CPU, more than the monitoring flow's whole read of a 100k-row window, and every flow run (and
every app worker) is a fresh process.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlalchemy as sa

SCRIPTS = Path(__file__).with_name("migrations")
VERSION_TABLE = "predictions_schema_version"
HEAD = "head"
CURRENT_REVISION = "0003"  # the newest script in migrations/versions (a unit test checks it is Alembic's head)
CURRENT_QUERY = f"SELECT version_num FROM {VERSION_TABLE}"  # noqa: S608
# pg_advisory_xact_lock takes a bigint: a fixed key of this project ("HRPREDLG" as ASCII bytes).
ADVISORY_LOCK_KEY = int.from_bytes(b"HRPREDLG", "big") & 0x7FFF_FFFF_FFFF_FFFF
CONNECT_TIMEOUT_SECONDS = 5
BUSY_TIMEOUT_SECONDS = 30


class MigrationFailed(Exception):
    """The database refused or dropped the migration's connection (SQLAlchemy's ``OperationalError``, whose
    message it keeps), so that callers can catch it without importing SQLAlchemy."""


def is_current(revisions: list[tuple[str]]) -> bool:
    """Whether the rows :data:`CURRENT_QUERY` returned say the log is at :data:`CURRENT_REVISION`."""
    return [tuple(row) for row in revisions] == [(CURRENT_REVISION,)]


@contextmanager
def _reported() -> Iterator[None]:
    import sqlalchemy as sa

    try:
        yield
    except sa.exc.OperationalError as exc:
        raise MigrationFailed(str(exc)) from exc


def _run(connection: sa.Connection, revision: str) -> None:
    """Run the revision scripts on a connection whose transaction already holds the lock."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def upgrade_postgres(url: str, revision: str = HEAD) -> None:
    """Bring a PostgreSQL log to ``revision`` (``url``: ``postgresql://...``), once across processes."""
    import sqlalchemy as sa

    engine = sa.create_engine(
        url.replace("postgresql://", "postgresql+psycopg://", 1),
        poolclass=sa.NullPool,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS, "application_name": "heartrisk-migrate"},
    )
    try:
        with _reported(), engine.begin() as connection:
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            _run(connection, revision)
    finally:
        engine.dispose()


def upgrade_sqlite(path: Path, revision: str = HEAD) -> None:
    """Bring a SQLite log to ``revision`` in one ``BEGIN EXCLUSIVE`` transaction (WAL mode set first).

    Processes take turns on the log's lock file first (the writers' one): switching a fresh file to WAL
    can answer "database is locked" at once, without SQLite's busy wait, when several workers start.
    """
    with _lock_file(path):
        _upgrade_sqlite(path, revision)


@contextmanager
def _lock_file(path: Path) -> Iterator[None]:
    handle = open_lock_file(path)
    try:
        with flocked(handle):
            yield
    finally:
        os.close(handle)


def open_lock_file(path: Path) -> int:
    """The SQLite log's lock file, on which its writers and its migration take turns (a descriptor)."""
    return os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)


@contextmanager
def flocked(handle: int) -> Iterator[None]:
    """Hold the lock file alone for the block (the kernel queues the others, without SQLite's busy sleeps)."""
    fcntl.flock(handle, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)


def _upgrade_sqlite(path: Path, revision: str) -> None:
    import sqlalchemy as sa

    url = sa.URL.create("sqlite", database=str(path))  # a path may hold '?' or '#', which a URL string would parse
    engine = sa.create_engine(url, poolclass=sa.NullPool, connect_args={"timeout": BUSY_TIMEOUT_SECONDS})

    # SQLAlchemy's recipe for SQLite transactions it controls: the driver's own BEGIN is off, ours is EXCLUSIVE.
    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN EXCLUSIVE")

    try:
        with _reported(), engine.begin() as connection:
            _run(connection, revision)
    finally:
        engine.dispose()
