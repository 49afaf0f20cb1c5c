"""The monitor's columnar copy of the log's window, so a scheduled run reads the new rows, not the whole window.

A daily monitoring run compares the last ``HEARTRISK_DRIFT_WINDOW_DAYS`` of the log, and all but a day of
those rows are rows it read the day before. Reading a million rows of 15 columns out of SQLite takes 1 to
2 s (PostgreSQL more, over the network); the same columns from Arrow files on local disk, memory-mapped,
about 0.1 s. So the monitor keeps the window it read as Arrow IPC files (segments: one per run that found
new rows) in a folder of its own, and asks the database only how many of the window's rows have an id up
to the copy's *settled* id, and for the rows after that id; the rows per model version are counted from
the copy and those rows.

The copy is trusted only when it holds as many of the window's rows up to the settled id as the database
does, and every copied row after it is still there; otherwise (rows purged or deleted in the database,
another database at the same place, a run with a longer window than the copy's) the window is read whole
and the copy rebuilt from it. The settled id stays :data:`TAIL` ids behind the newest copied row because
PostgreSQL hands out ids from a sequence before the commit: a row still being written when the copy was
made can become visible later with a smaller id than rows already copied. The copied rows are health data
like the log's: the copy keeps only the last window, and a purge of the log trims it too (:func:`purge`).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

TAIL = 10_000  # ids re-read behind the newest copied row: far more than rows being written at any moment
MAX_SEGMENTS = 32  # more files than this (hourly runs over a week) are merged into one
_log = logging.getLogger(__name__)


class WindowCopy:
    """The copy of one log's window: Arrow files named by their largest id, in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.segments: list[tuple[Path, pa.Table]] = []

    @classmethod
    def of(cls, root: Path, where: str) -> WindowCopy:
        """The copy of the log at ``where`` (its printable location) under ``root``."""
        return cls(Path(root) / hashlib.sha256(where.encode()).hexdigest()[:16])

    @contextmanager
    def opened(self) -> Iterator[WindowCopy]:
        """Hold the copy alone (a scheduled and a manual run at once would both add the same rows) and load it."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            lock = open(self.folder / ".lock", "a")  # noqa: SIM115 - held for the block below
        except OSError as exc:  # a read-only or misplaced state folder: the monitoring still runs
            _log.warning("The window copy %s cannot be used (%s); reading the whole window.", self.folder, exc)
            self.segments = []
            yield self
            return
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            for partial in self.folder.glob("*.tmp"):  # left by a run that stopped mid-write: rows, never read
                partial.unlink(missing_ok=True)
            paths = sorted(self.folder.glob("*.arrow"))
            try:
                self.segments = [(path, _read(path)) for path in paths]
            except (OSError, pa.ArrowInvalid) as exc:  # damaged: the database still has every row
                _log.warning("The window copy %s is unreadable (%s); reading the whole window.", self.folder, exc)
                for path in paths:
                    path.unlink(missing_ok=True)
                self.segments = []
            yield self

    def table(self) -> pa.Table | None:
        tables = [table for _, table in self.segments]
        return pa.concat_tables(tables) if tables else None

    def settled(self) -> int | None:
        """The id up to which the copy answers for the database, or None for an empty copy."""
        newest = max((pc.max(table["id"]).as_py() for _, table in self.segments if table.num_rows), default=None)
        return None if newest is None else newest - TAIL

    def agrees(self, start: float, settled: int, database_rows: int, tail: pa.Table) -> bool:
        """Whether the copy holds the window's ``database_rows`` rows up to ``settled`` and every copied row
        after it is in the database's ``tail`` (the rows after ``settled``)."""
        table = self.table()
        if table is None or table.schema.names != tail.schema.names:  # a copy from an older layout
            return False
        ids, recent = table["id"], pc.greater(table["id"], settled)
        held = pc.sum(pc.and_(pc.invert(recent), pc.greater_equal(table["ts"], start))).as_py() or 0
        copied_after = ids.filter(recent).to_numpy()
        return held == database_rows and bool(np.isin(copied_after, tail["id"].to_numpy()).all())

    def extend(self, start: float, settled: int, tail: pa.Table) -> pa.Table:
        """Add the tail's rows the copy lacks, drop rows older than ``start``; the window, copied rows first."""
        recent = [pc.filter(table["id"], pc.greater(table["id"], settled)) for _, table in self.segments]
        known = np.concatenate([ids.to_numpy() for ids in recent]) if recent else np.empty(0, np.int64)
        new = tail.filter(pa.array(~np.isin(tail["id"].to_numpy(), known)))
        if self.segments:  # an empty tail's column types are the driver's guess
            new = new.cast(self.segments[0][1].schema)
        self.keep_since(start)
        kept = self._add(new) if new.num_rows else True
        if len(self.segments) > MAX_SEGMENTS:
            self._merge()
        tables = [table for _, table in self.segments] + ([] if kept else [new])
        return pa.concat_tables(tables) if tables else tail

    def replace(self, window: pa.Table) -> pa.Table:
        """Make the copy the given window (read whole from the database); returns it."""
        self.clear()
        if window.num_rows:
            self._add(window)
        return window

    def clear(self) -> None:
        for path, _ in self.segments:
            path.unlink(missing_ok=True)
        self.segments = []

    def keep_since(self, start: float) -> None:
        """Drop the rows older than ``start``: those before a run's window, or a purge's cut-off."""
        kept = []
        for path, table in self.segments:
            if not table.num_rows or pc.max(table["ts"]).as_py() < start:
                path.unlink(missing_ok=True)
                continue
            if pc.min(table["ts"]).as_py() < start:
                table = table.filter(pc.greater_equal(table["ts"], start))
                self._write(path, table)
            kept.append((path, table))
        self.segments = kept

    def _add(self, table: pa.Table) -> bool:
        path = self.folder / f"{pc.max(table['id']).as_py():020d}.arrow"
        if not self._write(path, table):
            return False
        self.segments = sorted([*[(p, t) for p, t in self.segments if p != path], (path, table)], key=_name)
        return True

    def _merge(self) -> None:
        whole = pa.concat_tables([table for _, table in self.segments])
        for path, _ in self.segments:
            path.unlink(missing_ok=True)
        self.segments = []
        self._add(whole)

    def _write(self, path: Path, table: pa.Table) -> bool:
        """Write a segment whole or not at all; a copy that cannot be written only costs the next run a full read."""
        partial = path.with_suffix(".tmp")
        try:
            with ipc.new_file(partial, table.schema) as writer:
                writer.write_table(table)
            partial.replace(path)
        except OSError as exc:
            _log.warning("The window copy %s could not be written (%s); the next run reads the whole window.",
                         self.folder, exc)  # fmt: skip
            with suppress(OSError):  # a folder that cannot be written may not let these go either
                partial.unlink(missing_ok=True)
                path.unlink(missing_ok=True)
            return False
        return True


def purge(root: Path, before: float) -> None:
    """Drop the rows older than ``before`` from every log's copy under ``root``."""
    if not Path(root).is_dir():
        return
    for folder in sorted(path for path in Path(root).iterdir() if path.is_dir()):
        with WindowCopy(folder).opened() as held:
            held.keep_since(before)


def rows_per_version(window: pa.Table) -> dict[str, int]:
    """The window's rows per model version, as the database would count them."""
    counts = pc.value_counts(window["model_version"]).to_pylist()
    return dict(sorted((str(count["values"]), int(count["counts"])) for count in counts))


def _read(path: Path) -> pa.Table:
    """A segment, memory-mapped: its columns are read from the page cache, not copied."""
    with pa.memory_map(os.fspath(path)) as source:
        return ipc.open_file(source).read_all()


def _name(segment: tuple[Path, pa.Table]) -> str:
    return segment[0].name
