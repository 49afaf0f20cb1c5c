"""Which backend a log target names: a ``postgresql://`` URL is PostgreSQL, anything else a SQLite path."""

from __future__ import annotations

import re
from pathlib import Path

from heartrisk.predlog.base import PredictionLog, Purged
from heartrisk.settings import SQLITE_SYNCHRONOUS_DEFAULT, SqliteSynchronous

_POSTGRES_URL = re.compile(r"postgres(?:ql)?(?:\+psycopg)?://", re.IGNORECASE)


def is_postgres(target: str | Path) -> bool:
    return bool(_POSTGRES_URL.match(str(target)))


def open_log(
    target: str | Path, *, sqlite_synchronous: SqliteSynchronous = SQLITE_SYNCHRONOUS_DEFAULT
) -> PredictionLog:
    """The log at ``target``: a ``postgresql://`` URL (user, password, host, port, database), or a SQLite path
    whose commits sync to disk as ``sqlite_synchronous`` says (the app passes its setting; a reader needs none).

    Each backend is imported only here, so a process loads the driver of the one it uses.
    """
    if is_postgres(target):
        from heartrisk.predlog.postgres import PostgresLog

        return PostgresLog(_POSTGRES_URL.sub("postgresql://", str(target), count=1))
    from heartrisk.predlog.sqlite import SqliteLog

    return SqliteLog(Path(target), sqlite_synchronous)


def purge_old(target: str | Path, older_than_days: float) -> Purged:
    """Delete the log's rows older than ``older_than_days`` (0 or less keeps all): the log's kind of the
    purge (:mod:`heartrisk.purge`), which the daily flow and ``heartrisk predictions purge`` both run."""
    log = open_log(target)
    try:
        return log.purge(older_than_days=older_than_days)
    finally:
        log.close()
