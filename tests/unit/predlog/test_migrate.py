"""Migrations: the table appears on first use, once, even when many processes start at the same moment."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest

from heartrisk.predlog import migrate, open_log
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


def test_a_log_made_at_the_first_revision_gets_the_model_version_index(log_target: str) -> None:
    """An existing log (revision 0001, with rows) is brought to the head on its next start, rows kept."""
    log = open_log(log_target)
    if log.backend == "sqlite":
        log.path.parent.mkdir(parents=True, exist_ok=True)
        migrate.upgrade_sqlite(log.path, "0001")
    else:
        migrate.upgrade_postgres(log.url, "0001")
    log._migrated = True  # write as a release that knew only 0001 would
    log.append(np.ones((3, len(FEATURE_NAMES))), [0.5] * 3, [1] * 3, model_version="4", request_id="old")
    log.close()
    again = open_log(log_target)
    assert again.window(days=1).versions == {"4": 3}
    again.close()
    assert "predictions_version_ts" in _indexes(log_target, log)


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
