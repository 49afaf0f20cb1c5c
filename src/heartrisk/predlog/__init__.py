"""The log of served predictions: what monitoring compares with the reference data, and what retention trims.

One interface, two backends, chosen by the form of ``HEARTRISK_PREDICTIONS_DB``: a path is a SQLite
file (the embedded default, one host), a ``postgresql://`` URL a PostgreSQL database (app replicas on
several hosts write to one log). The app, the monitor and the tests hold a :class:`PredictionLog` from
:func:`open_log` and never ask which one it is. The table is created on first use by the migrations in
:mod:`heartrisk.predlog.migrate`, so a log never needs a hand-made schema.
"""

from __future__ import annotations

import math
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pandas as pd

from heartrisk.schema import FEATURE_NAMES

if TYPE_CHECKING:
    import pyarrow as pa

    from heartrisk.predlog.columnar import WindowCopy

COLUMNS = ("ts", "request_id", "model_version", "probability", "label", *FEATURE_NAMES)
SERVED = (*FEATURE_NAMES, "probability", "label")  # what monitoring compares: the inputs and what the model said
SAMPLE_PRIME = 2_147_483_647  # 2^31 - 1
SAMPLE_MULTIPLIER = 48_271
_POSTGRES_URL = re.compile(r"postgres(?:ql)?(?:\+psycopg)?://", re.IGNORECASE)
DAY_SECONDS = 86_400


class LogUnavailable(Exception):
    """The log cannot be written or read right now (database down, locked, unreachable); says why.

    The app answers 503 with this reason: a prediction that could not be logged is never served.
    """


@dataclass(frozen=True)
class Rows:
    """One request's records, ready for a backend to write in one transaction."""

    ts: float  # UNIX time, the same for every record of the request
    request_id: str
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

    @property
    def sampled(self) -> bool:
        return len(self.frame) < self.rows


@dataclass(frozen=True)
class Purged:
    """What a purge did: rows deleted, rows kept."""

    deleted: int
    remaining: int


class PredictionLog(ABC):
    """Append-only table of predictions, one row per served record; safe across threads and forks.

    Public methods raise :class:`LogUnavailable` when the database cannot be reached; the table is
    created (or brought up to date) once per object, on first use, so an app can start while its
    database is still down and a fresh database needs no set-up step.
    """

    backend: ClassVar[str]
    _seconds: ClassVar[str] = "ts"  # the row's time as UNIX seconds, in the backend's SQL
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
    ) -> int:
        """Append one row per record (rows of ``features`` in schema order) in one transaction."""
        matrix = np.asarray(features, dtype=float)
        if matrix.ndim != 2 or matrix.shape[1] != len(FEATURE_NAMES):
            raise ValueError(f"one row of the {len(FEATURE_NAMES)} features per record, got shape {matrix.shape}")
        probabilities, labels = [float(p) for p in probabilities], [int(lbl) for lbl in labels]
        if not len(probabilities) == len(labels) == len(matrix):
            raise ValueError("one probability and one label per record")
        rows = Rows(time.time(), request_id, model_version, probabilities, labels, matrix)
        with self._reachable():
            if labels:
                self._insert(rows)
        return len(labels)

    def count(self) -> int:
        with self._reachable():
            return self._count()

    def read(self, *, since: datetime | None = None, days: float | None = None) -> pd.DataFrame:
        """Predictions made since a time (or in the last ``days``), oldest first, ``ts`` in UTC."""
        with self._reachable():
            frame = self._read(window_start(since, days))
        frame["ts"] = pd.to_datetime(frame["ts"], unit="s", utc=True)
        return frame

    def features(self, *, since: datetime | None = None, days: float | None = None) -> pd.DataFrame:
        """Only the 13 features of :meth:`read`, as floats, in no particular order.

        Read through ADBC straight into Arrow columns on both backends: a driver that makes a Python
        float per cell took 0.38 s for 100 000 rows against 0.1 s, and several times the memory. The
        drift statistics do not depend on the order of rows, and sorting a million of them cost about
        15 % of the read (:meth:`read` keeps the order of writing).
        """
        with self._reachable():
            table = self._arrow(self._select(FEATURE_NAMES, window_start(since, days)))
        return _floats(table, FEATURE_NAMES)

    def window(
        self,
        *,
        since: datetime | None = None,
        days: float | None = None,
        max_rows: int | None = None,
        seed: int = 0,
        copy: Path | None = None,
    ) -> Window:
        """What monitoring compares: the features, probability and label of a window, and its rows per version.

        A window of more than ``max_rows`` rows is sampled uniformly at random, seeded, in the query
        itself (:func:`sample_key`), so no more than about ``max_rows`` rows ever leave the database;
        the sample is then trimmed to exactly ``max_rows``: the rows with the smallest keys, the same
        as ``ORDER BY key LIMIT max_rows`` without a sort in the database. The rows per model version
        are counted over the whole window, by the database. A window that fits is kept in ``copy``
        (a folder; :mod:`heartrisk.predlog.columnar`), so the next call reads only the rows added since.
        """
        start = window_start(since, days)
        from heartrisk.predlog.columnar import WindowCopy, rows_per_version

        held = WindowCopy.of(copy, self.where) if copy is not None else None
        with self._reachable(), held.opened() if held else nullcontext():
            copied = self._through_copy(held, start, max_rows) if held else None
            if copied is not None:
                return Window(_floats(copied, SERVED), copied.num_rows, rows_per_version(copied))
            counted = self._arrow(
                f"SELECT model_version, count(*) AS n FROM predictions WHERE {self._since(start)} "  # noqa: S608
                "GROUP BY model_version"
            ).to_pydict()
            versions = dict(sorted(zip(map(str, counted["model_version"]), map(int, counted["n"]), strict=True)))
            total = sum(versions.values())
            below = sample_threshold(total, max_rows)
            if held and below is None:
                table = held.replace(self._arrow(self._select(self._copied, start)))
            else:
                if held:
                    held.clear()  # a window too large to copy: the copy would only hold stale rows
                table = self._arrow(self._select(SERVED, start, below, seed))
        if below is not None and max_rows is not None and table.num_rows > max_rows:
            table = table.take(np.sort(np.argpartition(table["sample_key"].to_numpy(), max_rows)[:max_rows]))
        return Window(_floats(table, SERVED), total, versions)

    @property
    def _copied(self) -> tuple[str, ...]:
        """What a window copy keeps: the row's id, time (UNIX seconds) and model version, and what is compared."""
        return ("id", f"{self._seconds} AS ts", "model_version", *SERVED)

    def _through_copy(self, held: WindowCopy, start: float, max_rows: int | None) -> pa.Table | None:
        """The window from the copy and the rows after its settled id; None when the copy cannot give it
        (empty, disagreeing with the database, or the window grown past ``max_rows``)."""
        settled = held.settled()
        if settled is None:
            return None
        condition = f"{self._since(start)} AND id <= {int(settled)}"
        settled_rows = self._arrow(f"SELECT count(*) AS n FROM predictions WHERE {condition}")["n"][0].as_py()  # noqa: S608
        tail = self._arrow(f"{self._select(self._copied, start)} AND id > {int(settled)}")
        if max_rows is not None and int(settled_rows) + tail.num_rows > max_rows:
            return None
        if not held.agrees(start, settled, int(settled_rows), tail):
            return None
        return held.extend(start, settled, tail)

    def _select(self, columns: Iterable[str], start: float, below: int | None = None, seed: int = 0) -> str:
        """The query of a window's columns; with ``below``, only the rows whose sampling key is under it."""
        if below is None:
            return f"SELECT {', '.join(columns)} FROM predictions WHERE {self._since(start)}"  # noqa: S608
        key = sample_key(seed)
        return (
            f"SELECT {', '.join(columns)}, {key} AS sample_key FROM predictions "  # noqa: S608
            f"WHERE {self._since(start)} AND {key} < {int(below)}"
        )

    def purge(self, *, older_than_days: float, copies: Path | None = None) -> Purged:
        """Delete the rows older than ``older_than_days`` (0 or less keeps everything), here and in the
        monitor's window copies under ``copies`` (the same health data)."""
        with self._reachable():
            if older_than_days <= 0:
                return Purged(0, self._count())
            before = time.time() - older_than_days * DAY_SECONDS
            purged = self._purge(before)
        if copies is not None:
            from heartrisk.predlog import columnar

            columnar.purge(copies, before)
        return purged

    @abstractmethod
    def close(self) -> None:
        """Release this process's connections; the app never needs to, scripts and tests may."""

    def problem(self) -> str | None:
        """None when the log can be written; else why not (for /readyz)."""
        try:
            with self._reachable():
                self._ping()
        except LogUnavailable as exc:
            return str(exc)
        return None

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
    def _count(self) -> int: ...

    @abstractmethod
    def _read(self, start: float) -> pd.DataFrame:
        """All columns of the window, ``ts`` as UNIX time, ordered by id."""

    @abstractmethod
    def _since(self, start: float) -> str:
        """The SQL condition ``ts >= start``, the time inlined (a float this package computed, never user text)."""

    @abstractmethod
    def _arrow(self, query: str) -> pa.Table:
        """A query's result as Arrow columns, through the backend's ADBC driver."""

    @abstractmethod
    def _purge(self, before: float) -> Purged: ...

    @abstractmethod
    def _ping(self) -> None: ...


def is_postgres(target: str | Path) -> bool:
    return bool(_POSTGRES_URL.match(str(target)))


def open_log(target: str | Path) -> PredictionLog:
    """The log at ``target``: a ``postgresql://`` URL (user, password, host, port, database), or a SQLite path."""
    if is_postgres(target):
        from heartrisk.predlog.postgres import PostgresLog

        return PostgresLog(_POSTGRES_URL.sub("postgresql://", str(target), count=1))
    from heartrisk.predlog.sqlite import SqliteLog

    return SqliteLog(Path(target))


def window_start(since: datetime | None, days: float | None) -> float:
    """The window's start as a UNIX time (0: everything)."""
    if since is None and days is not None:
        since = datetime.now(UTC) - timedelta(days=days)
    return since.timestamp() if since is not None else 0.0


def sample_key(seed: int) -> str:
    """A row's sampling key in [0, 2^31 - 1), as SQL on its id: one expression, the same rows, on both backends.

    A Lehmer step (48271 id + seed mod the prime 2^31 - 1) spreads consecutive ids over the range, and
    squaring mod that prime breaks the lattice a linear step leaves: alone, it would keep runs of
    thousands of consecutive ids together (requests that came together, a time block). Every product
    stays under 2^62, so both databases compute it in 64-bit integers (SQLite turns an overflow into a float).
    """
    spread = f"((id % {SAMPLE_PRIME}) * {SAMPLE_MULTIPLIER} + {int(seed) % SAMPLE_PRIME}) % {SAMPLE_PRIME}"
    return f"((({spread}) * ({spread})) % {SAMPLE_PRIME})"


def sample_threshold(rows: int, max_rows: int | None) -> int | None:
    """The key below which a row is drawn, or None when every row of the window fits.

    Keys are close to uniform over [0, 2^31 - 1), so a threshold at ``share`` of the range draws about
    ``share`` of the rows; the share asks for four standard deviations more than ``max_rows``, so the
    draw almost never falls short, and the surplus is trimmed off.
    """
    if max_rows is None or rows <= max_rows:
        return None
    share = min(1.0, (max_rows + 4 * max_rows**0.5 + 16) / rows)
    return math.ceil(share * SAMPLE_PRIME)


def _floats(table: pa.Table, columns: Iterable[str]) -> pd.DataFrame:
    """The named columns as float64 (which also types an empty window)."""
    import pyarrow as pa

    names = list(columns)
    return table.select(names).cast(pa.schema([(name, pa.float64()) for name in names])).to_pandas()
