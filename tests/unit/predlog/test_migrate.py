"""Migrations: the table appears on first use, once, even when many processes start at the same moment."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import numpy as np
import psycopg
import pytest

from heartrisk.predlog import CLIENT_REQUEST_ID_MAX, migrate, open_log
from heartrisk.schema import FEATURE_NAMES
from tests.support.predlog import count as count_rows
from tests.support.predlog import logged

STARTERS = 6


def test_many_workers_opening_a_fresh_log_at_once_create_one_table(log_target: str) -> None:
    """Each thread has a log object (and connections) of its own, as gunicorn workers and replicas do."""
    barrier = threading.Barrier(STARTERS)
    errors: list[BaseException] = []

    def start(n: int) -> None:
        log = open_log(log_target)
        try:
            barrier.wait(30)
            log.append(np.full((1, len(FEATURE_NAMES)), float(n)), [0.5], [1], model_version="1", request_id=f"w{n}")
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)
        finally:
            log.close()

    threads = [threading.Thread(target=start, args=(n,)) for n in range(STARTERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    log = open_log(log_target)
    assert sorted(logged(log)["request_id"]) == [f"w{n}" for n in range(STARTERS)]
    log.close()


def test_upgrading_again_changes_nothing(log_target: str) -> None:
    log = open_log(log_target)
    log.append(np.ones((2, len(FEATURE_NAMES))), [0.5, 0.5], [1, 0], model_version="1", request_id="a")
    log.close()
    if log.backend == "sqlite":
        migrate.upgrade_sqlite(log.path)
    else:
        migrate.upgrade_postgres(log.url)
    again = open_log(log_target)
    assert count_rows(again) == 2
    again.close()


def _an_old_release_wrote(log_target: str, revision: str, rows: int, request_id: str) -> None:
    """A log at ``revision`` holding ``rows`` rows, written as the release that knew only that revision (plain SQL:
    this release's writer names the newer columns)."""
    log = open_log(log_target)
    columns = ("ts", "request_id", "model_version", "probability", "label", *FEATURE_NAMES)
    if log.backend == "sqlite":
        log.path.parent.mkdir(parents=True, exist_ok=True)
        migrate.upgrade_sqlite(log.path, revision)
        insert = f"INSERT INTO predictions ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"  # noqa: S608
        with sqlite3.connect(log.path) as conn:
            conn.executemany(insert, [(time.time(), request_id, "4", 0.5, 1, *[1.0] * len(FEATURE_NAMES))] * rows)
    else:
        migrate.upgrade_postgres(log.url, revision)
        insert = f"INSERT INTO predictions ({', '.join(columns)}) VALUES ({', '.join('%s' for _ in columns)})"  # noqa: S608
        with psycopg.connect(log.url) as conn:
            row = (datetime.now(UTC), request_id, "4", 0.5, 1, *[1.0] * len(FEATURE_NAMES))
            conn.cursor().executemany(insert, [row] * rows)
    log.close()


def test_a_log_made_at_the_first_revision_gets_the_model_version_index(log_target: str) -> None:
    """An existing log (revision 0001, with rows) is brought to the head on its next start, rows kept."""
    _an_old_release_wrote(log_target, "0001", 3, "old")
    again = open_log(log_target)
    assert again.window(days=1).versions == {"4": 3}
    again.close()
    assert "predictions_version_ts" in _indexes(log_target, open_log(log_target))


def test_a_log_of_the_second_revision_keeps_its_rows_and_gets_the_clients_request_id(log_target: str) -> None:
    """Rows written before keep their key and have no client id; new rows have both."""
    _an_old_release_wrote(log_target, "0002", 2, "old")
    log = open_log(log_target)
    log.append(np.ones((1, len(FEATURE_NAMES))), [0.5], [1], model_version="5", request_id="k", client_request_id="c-1")
    rows = logged(log)
    log.close()
    assert rows[["request_id", "client_request_id"]].values.tolist() == [["old", None], ["old", None], ["k", "c-1"]]


def test_the_client_id_column_is_bounded_as_the_app_bounds_it(log_target: str) -> None:
    from importlib import import_module

    revision = import_module("heartrisk.predlog.migrations.versions.0003_client_request_id")
    assert revision.LENGTH == CLIENT_REQUEST_ID_MAX
    log = open_log(log_target)
    with pytest.raises(ValueError, match="at most 64 characters"):
        log.append(
            np.ones((1, len(FEATURE_NAMES))), [0.5], [1], model_version="1", request_id="k", client_request_id="x" * 65
        )
    assert count_rows(log) == 0
    log.close()


def _indexes(target: str, log) -> set[str]:
    import sqlalchemy as sa

    if log.backend == "sqlite":
        url = sa.URL.create("sqlite", database=str(log.path))
    else:
        url = target.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(url)
    try:
        return {index["name"] for index in sa.inspect(engine).get_indexes("predictions")}
    finally:
        engine.dispose()


def test_the_current_revision_is_alembics_head() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(migrate.SCRIPTS))
    assert ScriptDirectory.from_config(config).get_current_head() == migrate.CURRENT_REVISION


def test_a_log_at_the_current_revision_is_read_without_sqlalchemy_or_alembic(log_target: str) -> None:
    """Their imports cost about 0.7 s of CPU, in every monitoring run (a fresh process each)."""
    log = open_log(log_target)
    log.append(np.ones((2, len(FEATURE_NAMES))), [0.5, 0.6], [1, 1], model_version="3", request_id="r")
    log.close()
    script = (
        "import sys; from heartrisk.predlog import open_log; log = open_log(sys.argv[1]); "
        "print(log.window(days=1).versions, sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'alembic'}))"
    )
    done = subprocess.run([sys.executable, "-c", script, log_target], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["{'3':", "2}", "[]"]


def test_a_failed_migration_keeps_the_databases_message(tmp_path) -> None:
    folder = tmp_path / "a-folder.sqlite"
    folder.mkdir()  # SQLite cannot open a folder as a database
    with pytest.raises(migrate.MigrationFailed, match=r"^\(sqlite3.OperationalError\) unable to open database file"):
        migrate.upgrade_sqlite(folder)
