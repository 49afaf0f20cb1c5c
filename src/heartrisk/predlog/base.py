"""The prediction log's interface, its records, and what both backends share.

A backend says how to connect (:meth:`PredictionLog._transaction`, :meth:`PredictionLog._arrow`), how to
write a request's rows, and how its SQL spells a time; counting, purging, the readiness ping and the
monitoring window are written once, here, over those.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from heartrisk.predlog.sampling import KEY, sample_key, sample_threshold, trim
from heartrisk.schema import FEATURE_NAMES

if TYPE_CHECKING:
    import pyarrow as pa

COLUMNS = ("ts", "request_id", "client_request_id", "model_version", "probability", "label", *FEATURE_NAMES)
CLIENT_REQUEST_ID_MAX = 64  # characters of a client's own request id (the column's bound on PostgreSQL)
SERVED = (*FEATURE_NAMES, "probability", "label")  # what monitoring compares: the inputs and what the model said
DAY_SECONDS = 86_400


class LogUnavailable(Exception):
    """The log cannot be written or read right now (database down, locked, unreachable); says why.

    The app answers 503 with this reason: a prediction that could not be logged is never served.
    """


@dataclass(frozen=True)
class Rows:
    """One request's records, ready for a backend to write in one transaction."""

    ts: float  # UNIX time, the same for every record of the request
    request_id: str  # the server's key of the request
    client_request_id: str | None  # the client's own id of it, when it sent one
    model_version: str
    probabilities: list[float]
    labels: list[int]
    features: np.ndarray  # one record per row, schema order


@dataclass(frozen=True)
class Window:
    """A monitoring window of the log: the rows to compare, and how many the whole window held."""

    frame: pd.DataFrame  # the 13 features, probability and label as floats, any order; a sample if sampled
    rows: int  # rows in the window
    versions: dict[str, int]  # rows per model version in the window (all of them, sampled or not)


@dataclass(frozen=True)
class Purged:
    """What a purge of the log did: rows deleted, rows kept, and where (safe to print)."""

    deleted: int
    remaining: int
    where: str


class PredictionLog(ABC):
    """Append-only table of predictions, one row per served record; safe across threads and forks.

    Public methods raise :class:`LogUnavailable` when the database cannot be reached; the table is
    created (or brought up to date) once per object, on first use, so an app can start while its
    database is still down and a fresh database needs no set-up step.
    """

    backend: ClassVar[str]
    _at: ClassVar[str]  # a UNIX time parameter as the backend's SQL compares it with ``ts``
    _unreachable: ClassVar[tuple[type[Exception], ...]]  # the backend's "cannot reach the database" errors

    def __init__(self) -> None:
        self._migrated = False
        self._migrating = threading.Lock()

    @property
    @abstractmethod
    def where(self) -> str:
        """Where the log is, safe to print (no password)."""

    def append(
        self,
        features: np.ndarray,
        probabilities: Iterable[float],
        labels: Iterable[int],
        *,
        model_version: str,
        request_id: str,
        client_request_id: str | None = None,
    ) -> int:
        """Append one row per record (rows of ``features`` in schema order) in one transaction; ``request_id`` is
        the server's key, ``client_request_id`` what the client called the request (at most 64 characters)."""
        if client_request_id is not None and len(client_request_id) > CLIENT_REQUEST_ID_MAX:
            raise ValueError(f"a client's request id has at most {CLIENT_REQUEST_ID_MAX} characters")
        matrix = np.asarray(features, dtype=float)
        if matrix.ndim != 2 or matrix.shape[1] != len(FEATURE_NAMES):
            raise ValueError(f"one row of the {len(FEATURE_NAMES)} features per record, got shape {matrix.shape}")
        probabilities, labels = [float(p) for p in probabilities], [int(lbl) for lbl in labels]
        if not len(probabilities) == len(labels) == len(matrix):
            raise ValueError("one probability and one label per record")
        rows = Rows(time.time(), request_id, client_request_id, model_version, probabilities, labels, matrix)
        with self._reachable():
            if labels:
                self._insert(rows)
        return len(labels)

    def window(self, *, since: datetime | None = None, days: float | None = None, max_rows: int | None = None,
               seed: int = 0) -> Window:  # fmt: skip
        """What monitoring compares: the features, probability and label of a window, and its rows per version.

        Read through ADBC straight into Arrow columns on both backends (a driver that makes a Python
        float per cell took 0.38 s for 100 000 rows against 0.1 s, and several times the memory), in no
        particular order: the drift statistics do not depend on it. A window of more than ``max_rows``
        rows is sampled in the query itself (:mod:`heartrisk.predlog.sampling`), so no more than about
        ``max_rows`` rows ever leave the database. The rows per model version are counted by the database,
        over the whole window.
        """
        where = self._since(window_start(since, days))
        with self._reachable():
            counted = self._arrow(
                f"SELECT model_version, count(*) AS n FROM predictions WHERE {where} GROUP BY model_version"  # noqa: S608
            ).to_pydict()
            versions = dict(sorted(zip(map(str, counted["model_version"]), map(int, counted["n"]), strict=True)))
            total = sum(versions.values())
            below = sample_threshold(total, max_rows)
            if below is None:
                table = self._arrow(f"SELECT {', '.join(SERVED)} FROM predictions WHERE {where}")  # noqa: S608
            else:
                key = sample_key(seed)
                table = self._arrow(
                    f"SELECT {', '.join(SERVED)}, {key} AS {KEY} FROM predictions "  # noqa: S608
                    f"WHERE {where} AND {key} < {int(below)}"
                )
        if below is not None and max_rows is not None:
            table = trim(table, max_rows)
        return Window(_floats(table, SERVED), total, versions)

    def purge(self, *, older_than_days: float) -> Purged:
        """Delete the rows older than ``older_than_days`` (0 or less keeps everything)."""
        with self._reachable(), self._transaction() as conn:
            if older_than_days > 0:
                before = time.time() - older_than_days * DAY_SECONDS
                deleted = conn.execute(f"DELETE FROM predictions WHERE ts < {self._at}", (before,)).rowcount  # noqa: S608
            else:
                deleted = 0
            remaining = int(conn.execute("SELECT count(*) FROM predictions").fetchone()[0])
        return Purged(int(deleted), remaining, self.where)

    def problem(self) -> str | None:
        """None when the log can be written; else why not (for /readyz)."""
        try:
            with self._reachable(), self._transaction(quick=True) as conn:
                conn.execute("SELECT 1 FROM predictions LIMIT 1").fetchall()
        except LogUnavailable as exc:
            return str(exc)
        return None

    @abstractmethod
    def close(self) -> None:
        """Release this process's connections; the app never needs to, scripts and tests may."""

    @contextmanager
    def _reachable(self) -> Iterator[None]:
        """Bring the table up to date once, and turn the backend's connection errors into LogUnavailable."""
        try:
            if not self._migrated:
                with self._migrating:
                    if not self._migrated:
                        self._migrate()
                        self._migrated = True
            yield
        except self._unreachable as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LogUnavailable(f"prediction log {self.where} unreachable: {reason}") from exc

    @abstractmethod
    def _migrate(self) -> None: ...

    @abstractmethod
    def _insert(self, rows: Rows) -> None: ...

    @abstractmethod
    def _transaction(self, *, quick: bool = False) -> AbstractContextManager[Any]:
        """A DB-API connection in one transaction (``execute`` returns a cursor); ``quick``: a readiness
        probe, which must not wait long for a connection."""

    @abstractmethod
    def _since(self, start: float) -> str:
        """The SQL condition ``ts >= start``, the time inlined (a float this package computed, never user text)."""

    @abstractmethod
    def _arrow(self, query: str) -> pa.Table:
        """A query's result as Arrow columns, through the backend's ADBC driver."""


def window_start(since: datetime | None, days: float | None) -> float:
    """The window's start as a UNIX time (0: everything)."""
    if since is None and days is not None:
        since = datetime.now(UTC) - timedelta(days=days)
    return since.timestamp() if since is not None else 0.0


def _floats(table: pa.Table, columns: Iterable[str]) -> pd.DataFrame:
    """The named columns as float64 (which also types an empty window)."""
    import pyarrow as pa

    names = list(columns)
    return table.select(names).cast(pa.schema([(name, pa.float64()) for name in names])).to_pandas()
