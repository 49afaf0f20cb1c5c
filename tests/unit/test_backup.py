"""Backup and restore of the local state folder: real SQLite databases written to while the backup runs."""

from __future__ import annotations

import calendar
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


def archive_named(folder: Path, taken: str, content: bytes = b"an archive") -> Path:
    path = folder / f"heartrisk-state-{taken}.tar.gz"
    path.write_bytes(content)
    return path


NOW = calendar.timegm((2026, 12, 4, 12, 0, 0, 0, 0, 0))  # 2026-12-04T12:00:00Z


def test_prune_deletes_only_its_own_archives_taken_before_the_period(tmp_path: Path) -> None:
    """Age is the time in the name; the file's own time (here: just now) says nothing."""
    folder = tmp_path / "backups"
    folder.mkdir()
    old = archive_named(folder, "20261104T115959Z")  # 30 days and 1 s before NOW
    kept = [
        archive_named(folder, "20261104T120001Z"),  # 1 s short of 30 days
        archive_named(folder, "20261204T115900Z"),
        folder / "heartrisk-state-20261001T000000Z.tar.gz.part",  # a backup that never finished
        folder / "heartrisk-state-20261001T000000Z.tar.bz2",
        folder / "heartrisk-state-20261399T000000Z.tar.gz",  # the pattern's digits, no date
        folder / "notes-20261001.txt",
        folder / "heartrisk-state-20261002T000000Z.tar.gz",  # a folder of that name
    ]
    for path in kept[2:6]:
        path.write_text("not ours")
    kept[-1].mkdir()
    (kept[-1] / "heartrisk-state-20261001T000000Z.tar.gz").write_text("in a sub-folder: not ours")
    elsewhere = archive_named(tmp_path, "20260101T000000Z")
    link = folder / "heartrisk-state-20260101T000000Z.tar.gz"
    link.symlink_to(elsewhere)

    assert backup.prune(folder, 30, now=NOW) == [old]
    assert not old.exists() and all(path.exists() for path in kept)
    assert link.is_symlink() and elsewhere.read_bytes() == b"an archive"  # neither the link nor what it points to
    assert backup.prune(folder, 30, now=NOW) == []


def test_prune_keeps_everything_with_a_period_of_zero(tmp_path: Path) -> None:
    ancient = archive_named(tmp_path, "20000101T000000Z")
    assert backup.prune(tmp_path, 0, now=NOW) == [] and ancient.exists()
    assert backup.taken_at(ancient.name) == calendar.timegm((2000, 1, 1, 0, 0, 0, 0, 0, 0))


def test_a_backup_prunes_the_archives_past_the_backup_retention_and_counts_them(
    state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    old = archive_named(folder, "20250101T000000Z")
    recent = archive_named(folder, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() - 9 * 86_400)))
    other = folder / "pg_dump-20250101.sql"
    other.write_text("an operator's own file")
    monkeypatch.setenv("HEARTRISK_STATE_DIR", str(state))
    monkeypatch.setenv("HEARTRISK_BACKUP_RETENTION_DAYS", "10")

    assert cli.main(["backup", "--to", str(folder)]) == 0
    out = capsys.readouterr().out.splitlines()
    made = json.loads(out[-1])
    assert (made["pruned"], made["retention_days"]) == (1, 10.0)
    assert made["archive_bytes"] == Path(made["archive"]).stat().st_size
    assert f"Deleted {old.name}: taken more than 10 days ago" in out
    assert sorted(p.name for p in folder.iterdir()) == sorted([Path(made["archive"]).name, recent.name, other.name])

    monkeypatch.setenv("HEARTRISK_BACKUP_RETENTION_DAYS", "0")
    assert cli.main(["backup", "--to", str(folder)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert json.loads(out[-1])["pruned"] == 0 and recent.exists() and other.exists()
    assert "Archives are kept forever (HEARTRISK_BACKUP_RETENTION_DAYS=0)" in out


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
