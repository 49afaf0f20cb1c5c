"""What a test reads back from a prediction log: every row as written, through the database's own driver."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pandas as pd
import psycopg

from heartrisk.predlog import COLUMNS, PredictionLog

_QUERY = f"SELECT {', '.join(COLUMNS)} FROM predictions ORDER BY id"  # noqa: S608


def logged(log: PredictionLog) -> pd.DataFrame:
    """Every row of the log in the order it was written, ``ts`` as a UTC time (the app serves none of this:
    the monitor reads windows, the purge deletes; only the tests read the log whole)."""
    if log.backend == "sqlite":
        with closing(sqlite3.connect(log.path)) as conn:
            frame = pd.read_sql_query(_QUERY, conn)
        frame["ts"] = pd.to_datetime(frame["ts"], unit="s", utc=True)
        return frame
    with psycopg.connect(log.url) as conn:
        frame = pd.DataFrame(conn.execute(_QUERY).fetchall(), columns=list(COLUMNS))
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def count(log: PredictionLog) -> int:
    """The log's rows, after the log made its table (as the app's first request would)."""
    problem = log.problem()
    assert problem is None, problem
    return len(logged(log))
