"""The SQLite backend: WAL mode, URI-safe reads, and a log written before migrations existed is adopted."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from alembic.script import ScriptDirectory

from heartrisk.predlog import open_log
from heartrisk.predlog.migrate import SCRIPTS, VERSION_TABLE
from heartrisk.schema import FEATURE_NAMES
from tests.support.predlog import count as count_rows
from tests.support.predlog import logged

# The table as the prediction log created it by hand, before Alembic (commit 73cd8f7 and earlier).
LEGACY = (
    "CREATE TABLE predictions (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, request_id TEXT NOT NULL, "
    "model_version TEXT NOT NULL, probability REAL NOT NULL, label INTEGER NOT NULL, "
    + ", ".join(f"{name} REAL NOT NULL" for name in FEATURE_NAMES)
    + ")"
)


def test_features_are_read_from_a_path_that_needs_quoting_in_a_uri(tmp_path: Path) -> None:
    log = open_log(tmp_path / "state dir #1 ?%20" / "p.sqlite")
    log.append(np.full((3, len(FEATURE_NAMES)), 2.5), [0.5] * 3, [1] * 3, model_version="1", request_id="a")
    assert log.window().frame[list(FEATURE_NAMES)].to_numpy().tolist() == [[2.5] * len(FEATURE_NAMES)] * 3


def test_the_log_is_in_wal_mode_so_readers_never_block_the_app(tmp_path: Path) -> None:
    log = open_log(tmp_path / "p.sqlite")
    assert count_rows(log) == 0
    with sqlite3.connect(tmp_path / "p.sqlite") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_log_written_before_migrations_is_adopted_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(LEGACY)
        conn.execute("CREATE INDEX predictions_ts ON predictions (ts)")
        conn.execute(
            f"INSERT INTO predictions (ts, request_id, model_version, probability, label, {', '.join(FEATURE_NAMES)}) "  # noqa: S608
            f"VALUES (1.0, 'old', '1', 0.5, 1, {', '.join('1.0' for _ in FEATURE_NAMES)})"
        )
    log = open_log(path)
    log.append(np.ones((1, len(FEATURE_NAMES))), [0.5], [1], model_version="2", request_id="new")
    assert list(logged(log)["request_id"]) == ["old", "new"]
    with sqlite3.connect(path) as conn:
        head = ScriptDirectory(str(SCRIPTS)).get_current_head()  # adopted, then brought to the latest revision
        assert conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall() == [(head,)]  # noqa: S608


def test_a_fresh_log_has_the_legacy_table_exactly(tmp_path: Path) -> None:
    """Fresh and adopted files are the same table (the legacy one, then the later revisions' columns), so
    nothing downstream can tell them apart."""
    columns = "SELECT name, type, \"notnull\" OR pk, pk FROM pragma_table_info('predictions')"
    count_rows(open_log(tmp_path / "p.sqlite"))
    with sqlite3.connect(tmp_path / "p.sqlite") as conn:
        fresh = conn.execute(columns).fetchall()
    with sqlite3.connect(tmp_path / "legacy.sqlite") as conn:
        conn.execute(LEGACY)
        legacy = conn.execute(columns).fetchall()
    assert fresh == [*legacy, ("client_request_id", "VARCHAR(64)", 0, 0)]
    count_rows(open_log(tmp_path / "legacy.sqlite"))  # adopted
    with sqlite3.connect(tmp_path / "legacy.sqlite") as conn:
        assert conn.execute(columns).fetchall() == fresh


def test_a_writer_waits_for_its_turn_on_the_lock_file_and_then_writes(tmp_path) -> None:
    """Another process holding the lock file makes an append wait for it, not fail or skip it."""
    import fcntl
    import os

    log = open_log(tmp_path / "p.sqlite")
    assert count_rows(log) == 0  # the table exists: migrating takes the same lock file, before the writer's turn
    other = os.open(tmp_path / "p.sqlite.lock", os.O_RDWR | os.O_CREAT)  # another open file: another writer
    fcntl.flock(other, fcntl.LOCK_EX)
    writer = threading.Thread(target=log.append, args=(np.zeros((1, len(FEATURE_NAMES))), [0.5], [1]),
                              kwargs={"model_version": "1", "request_id": "r"})  # fmt: skip
    writer.start()
    writer.join(0.5)
    assert writer.is_alive() and count_rows(log) == 0
    fcntl.flock(other, fcntl.LOCK_UN)
    os.close(other)
    writer.join(10)
    assert not writer.is_alive() and count_rows(log) == 1


@pytest.mark.parametrize(("synchronous", "pragma"), [("FULL", 2), ("NORMAL", 1)])
def test_the_writer_syncs_to_disk_as_asked(tmp_path: Path, synchronous: str, pragma: int) -> None:
    """SQLite's own numbers for the levels (FULL 2, NORMAL 1), read back from the connection that wrote."""
    log = open_log(tmp_path / "p.sqlite", sqlite_synchronous=synchronous)
    log.append(np.zeros((1, len(FEATURE_NAMES))), [0.5], [1], model_version="1", request_id="r")
    assert log._writer().execute("PRAGMA synchronous").fetchone() == (pragma,)
    assert open_log(tmp_path / "q.sqlite").synchronous == "FULL"  # the default, as the settings'


def test_a_synchronous_level_other_than_normal_or_full_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous must be one of NORMAL, FULL, not 'OFF'"):
        open_log(tmp_path / "p.sqlite", sqlite_synchronous="OFF")
