"""The monitor's copy of the window, on both backends: the same rows as the database's window every time,
only the new rows read, rebuilt whenever the database and the copy disagree, trimmed by a purge."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pytest

from heartrisk import predlog
from heartrisk.predlog import COLUMNS, DAY_SECONDS, PredictionLog, Window, columnar, open_log
from heartrisk.schema import FEATURE_NAMES
from tests.support.window_copy import copied_rows


@pytest.fixture
def log(log_target: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[PredictionLog]:
    monkeypatch.setattr(columnar, "TAIL", 10)  # the real 10 000 would re-read every row of these small logs
    opened = open_log(log_target)
    yield opened
    opened.close()


@pytest.fixture
def fetched(log: PredictionLog, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The rows each query of the log returned, in order (the real queries, counted)."""
    rows: list[int] = []
    query = log._arrow

    def counted(sql: str) -> pa.Table:
        table = query(sql)
        rows.append(table.num_rows)
        return table

    monkeypatch.setattr(log, "_arrow", counted)
    return rows


def _append(log: PredictionLog, rows: int, version: str = "1", days_ago: float = 0.0) -> None:
    """``rows`` rows with distinct values (age counts up from the rows already there), as if ``days_ago``."""
    first = log.count()
    features = np.tile(np.arange(1.0, len(FEATURE_NAMES) + 1), (rows, 1))
    features[:, 0] = np.arange(first, first + rows)
    then = time.time() - days_ago * DAY_SECONDS
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(predlog, "time", SimpleNamespace(time=lambda: then))
        log.append(features, features[:, 0] / 1000, [1] * rows, model_version=version, request_id=f"r{first}")


def _sorted(window: Window) -> pd.DataFrame:
    return window.frame.sort_values("age").reset_index(drop=True)


def _same(copied: Window, log: PredictionLog, days: float = 7) -> None:
    whole = log.window(days=days)
    assert (copied.rows, copied.versions) == (whole.rows, whole.versions)
    pd.testing.assert_frame_equal(_sorted(copied), _sorted(whole))


def _sql(log: PredictionLog, statement: str) -> None:
    if log.backend == "sqlite":
        with sqlite3.connect(log.where) as conn:
            conn.execute(statement)
    else:
        with psycopg.connect(log.url, autocommit=True) as conn:
            conn.execute(statement)


def test_a_copied_window_is_the_database_window_and_later_runs_read_only_the_new_rows(
    log: PredictionLog, fetched: list[int], tmp_path: Path
) -> None:
    _append(log, 300, "3")
    first = log.window(days=7, copy=tmp_path)
    assert first.rows == 300 and max(fetched) == 300  # the first run reads the window whole
    _same(first, log)
    _append(log, 50, "4")
    fetched.clear()
    second = log.window(days=7, copy=tmp_path)
    assert max(fetched) == 60  # the 50 new rows and the 10 re-read behind the newest copied one, no more
    _same(second, log)
    assert second.versions == {"3": 300, "4": 50}
    assert len(copied_rows(tmp_path)) == 350 and len(list(tmp_path.rglob("*.arrow"))) == 2
    fetched.clear()
    assert len(log.window(days=7, copy=tmp_path).frame) == 350 and max(fetched) == 10  # nothing new: the tail


def test_rows_gone_from_the_database_make_the_copy_rebuild_and_a_purge_trims_the_copy_too(
    log: PredictionLog, tmp_path: Path
) -> None:
    _append(log, 20, days_ago=3)
    _append(log, 30)
    assert log.window(days=7, copy=tmp_path).rows == 50
    _sql(log, "DELETE FROM predictions WHERE id IN (SELECT min(id) FROM predictions)")  # not through the copy
    _same(log.window(days=7, copy=tmp_path), log)
    assert len(copied_rows(tmp_path)) == 49
    purged = log.purge(older_than_days=2, copies=tmp_path)
    assert (purged.deleted, purged.remaining) == (19, 30)
    kept = copied_rows(tmp_path)
    assert len(kept) == 30 and kept["ts"].min() > time.time() - 2 * DAY_SECONDS  # no health data kept longer
    _same(log.window(days=7, copy=tmp_path), log)


def test_a_row_that_appears_late_with_a_smaller_id_is_not_missed(log: PredictionLog, tmp_path: Path) -> None:
    """PostgreSQL takes ids before the commit: a slow writer's row can show after rows with larger ids."""
    _append(log, 100)
    _sql(log, "DELETE FROM predictions WHERE id IN (SELECT max(id) - 5 FROM predictions)")  # written, not committed
    _sql(log, "DELETE FROM predictions WHERE id IN (SELECT min(id) + 10 FROM predictions)")  # the same, far back
    log.window(days=7, copy=tmp_path)
    columns = ", ".join(COLUMNS)
    for missing in ("max(id) - 5", "min(id) + 10"):  # inside the re-read tail, then before it: the row appears
        late = f"SELECT ({missing}) FROM predictions"  # noqa: S608 - the test's own SQL, here and below
        first_row = f"SELECT {columns} FROM predictions WHERE id = (SELECT min(id) FROM predictions)"  # noqa: S608
        _sql(log, f"INSERT INTO predictions (id, {columns}) SELECT ({late}), * FROM ({first_row}) AS r")  # noqa: S608
        _same(log.window(days=7, copy=tmp_path), log)
    assert log.window(days=7, copy=tmp_path).rows == 100


def test_a_window_too_large_to_copy_is_sampled_in_the_database_and_leaves_no_copy(
    log: PredictionLog, tmp_path: Path
) -> None:
    _append(log, 300)
    log.window(days=7, copy=tmp_path)
    assert len(copied_rows(tmp_path)) == 300
    sampled = log.window(days=7, max_rows=100, copy=tmp_path)
    assert (sampled.rows, len(sampled.frame), sampled.sampled) == (300, 100, True)
    assert list(tmp_path.rglob("*.arrow")) == []


def test_a_longer_window_than_the_copy_holds_is_read_whole(log: PredictionLog, tmp_path: Path) -> None:
    _append(log, 20, days_ago=5)
    _append(log, 30)
    assert log.window(days=1, copy=tmp_path).rows == 30
    assert copied_rows(tmp_path)["ts"].min() > time.time() - DAY_SECONDS  # the copy keeps its window only
    _same(log.window(days=7, copy=tmp_path), log)


def test_frequent_runs_keep_few_files(log: PredictionLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(columnar, "MAX_SEGMENTS", 3)
    for _ in range(6):
        _append(log, 20)
        _same(log.window(days=7, copy=tmp_path), log)
    assert 1 <= len(list(tmp_path.rglob("*.arrow"))) <= 3
    assert len(copied_rows(tmp_path)) == 120


def test_a_copy_that_cannot_be_written_costs_only_a_full_read(
    log: PredictionLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _append(log, 40)

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(columnar.ipc, "new_file", full_disk)
    _same(log.window(days=7, copy=tmp_path), log)
    _append(log, 10)
    _same(log.window(days=7, copy=tmp_path), log)
    assert list(tmp_path.rglob("*.arrow")) == [] and list(tmp_path.rglob("*.tmp")) == []


def test_a_damaged_copy_or_a_half_written_file_is_dropped_and_the_window_read_whole(
    log: PredictionLog, tmp_path: Path
) -> None:
    _append(log, 40)
    log.window(days=7, copy=tmp_path)
    (segment,) = tmp_path.rglob("*.arrow")
    segment.write_bytes(segment.read_bytes()[:100])  # a disk error, a copy of the folder cut short
    (segment.parent / "00000000000000000999.tmp").write_bytes(b"rows of a run that stopped mid-write")
    _same(log.window(days=7, copy=tmp_path), log)
    assert len(copied_rows(tmp_path)) == 40 and list(tmp_path.rglob("*.tmp")) == []


def test_a_copy_folder_that_cannot_be_made_leaves_the_window_whole(log: PredictionLog, tmp_path: Path) -> None:
    (tmp_path / "state").write_text("a file where the state folder should be")
    _append(log, 30)
    _same(log.window(days=7, copy=tmp_path / "state" / "window-copy"), log)
