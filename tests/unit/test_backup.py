"""Backup and restore of the local state folder: real SQLite databases written to while the backup runs."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tarfile
import time
from pathlib import Path

import pytest

from heartrisk import backup, cli
from tests.support.pushgateway import pushed as served
from tests.support.pushgateway import pushgateway
from tests.support.servers import free_port


def rows(database: Path) -> int:
    with sqlite3.connect(database) as db:
        return db.execute("SELECT count(*) FROM predictions").fetchone()[0]


@pytest.fixture
def state(tmp_path: Path):
    """A state folder like make up's, and a writer that keeps its committed rows in the WAL file (as the
    app does between checkpoints): a plain copy of the database file misses them."""
    folder = tmp_path / ".state"
    (folder / "mlflow" / "artifacts" / "1").mkdir(parents=True)
    (folder / "mlflow" / "artifacts" / "1" / "model.onnx").write_bytes(b"\x08\x01onnx")
    (folder / "predictions.sqlite.lock").write_text("")
    writer = sqlite3.connect(folder / "predictions.sqlite")
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE predictions (id INTEGER PRIMARY KEY, probability REAL)")
    writer.executemany("INSERT INTO predictions (probability) VALUES (?)", [(i / 100,) for i in range(100)])
    writer.commit()
    yield folder
    writer.close()


def test_a_backup_taken_while_the_log_is_written_restores_every_committed_row(state: Path, tmp_path: Path) -> None:
    naive = tmp_path / "naive.sqlite"
    shutil.copyfile(state / "predictions.sqlite", naive)
    with pytest.raises(sqlite3.OperationalError):  # the file alone does not even hold the table yet
        rows(naive)

    made = backup.backup(state, tmp_path / "backups")
    assert made.files == 2 and made.archive.stat().st_mode & 0o777 == 0o600
    with tarfile.open(made.archive) as tar:
        manifest = json.load(tar.extractfile("./manifest.json"))
    assert sorted(manifest["files"]) == ["mlflow/artifacts/1/model.onnx", "predictions.sqlite"]

    target = tmp_path / "elsewhere" / ".state"
    done = backup.restore(made.archive, target)
    assert (done.files, done.previous) == (2, None) and target.stat().st_mode & 0o777 == 0o700
    assert rows(target / "predictions.sqlite") == 100
    assert (target / "mlflow" / "artifacts" / "1" / "model.onnx").read_bytes() == b"\x08\x01onnx"


def test_a_restore_moves_what_was_there_aside_and_refuses_while_the_stack_runs(state: Path, tmp_path: Path) -> None:
    made = backup.backup(state, tmp_path / "backups")
    (state / "stack.pid").write_text(str(os.getpid()))  # make up's supervisor, alive
    with pytest.raises(backup.BackupError, match="stop it first"):
        backup.restore(made.archive, state)
    assert (state / "stack.pid").exists()  # untouched

    (state / "stack.pid").write_text("999999999")  # a stack that has stopped
    (state / "newer.txt").write_text("made after the backup")
    done = backup.restore(made.archive, state)
    assert done.previous is not None and (done.previous / "newer.txt").read_text() == "made after the backup"
    assert not (state / "newer.txt").exists() and rows(state / "predictions.sqlite") == 100


def test_a_damaged_archive_restores_nothing(state: Path, tmp_path: Path) -> None:
    made = backup.backup(state, tmp_path / "backups")
    unpacked = tmp_path / "unpacked"
    with tarfile.open(made.archive) as tar:
        tar.extractall(unpacked, filter="data")
    (unpacked / "mlflow" / "artifacts" / "1" / "model.onnx").write_bytes(b"changed")
    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(damaged, "w:gz") as tar:
        tar.add(unpacked, arcname=".")
    target = tmp_path / "target"
    with pytest.raises(backup.BackupError, match=r"model\.onnx is missing or does not match"):
        backup.restore(damaged, target)
    assert not target.exists()


def test_the_commands_print_their_result_as_the_last_json_line(
    state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("HEARTRISK_STATE_DIR", str(state))
    assert cli.main(["backup", "--to", str(tmp_path / "backups")]) == 0
    made = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert made["files"] == 2 and Path(made["archive"]).is_file()
    (state / "stack.pid").write_text(str(os.getpid()))
    assert cli.main(["restore", made["archive"]]) == 2
    assert "stop it first" in capsys.readouterr().err
    (state / "stack.pid").unlink()
    assert cli.main(["restore", made["archive"]]) == 0
    restored = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert restored["files"] == 2 and restored["previous"].startswith(str(state) + ".before-restore-")


def test_the_command_pushes_the_backups_time_and_a_lost_push_is_only_a_warning(
    state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("HEARTRISK_STATE_DIR", str(state))
    with pushgateway(tmp_path) as gateway:
        monkeypatch.setenv("HEARTRISK_PUSHGATEWAY_URL", gateway)
        started = time.time()
        assert cli.main(["backup", "--to", str(tmp_path / "backups")]) == 0
        pushed = served(gateway, "heartrisk_backup")
    made = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert started <= pushed["heartrisk_backup_last_success_timestamp_seconds"] <= time.time()
    assert (pushed["heartrisk_backup_files"], pushed["heartrisk_backup_bytes"]) == (made["files"], made["bytes"])
    gone = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HEARTRISK_PUSHGATEWAY_URL", gone)
    assert cli.main(["backup", "--to", str(tmp_path / "backups")]) == 0
    assert f"heartrisk backup: warning: metrics of heartrisk_backup not pushed to the Pushgateway at {gone}: " in (
        capsys.readouterr().err
    )
