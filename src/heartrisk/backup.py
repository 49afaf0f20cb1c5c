"""Back up and restore the local stack's state folder (``.state/``): one archive each way.

The archive holds every file of the folder that matters (MLflow's database and artifacts, Prefect's
database, the prediction log, the Evidently workspace, the drift reports, the mail sink) and a manifest
of their sizes and SHA-256 sums. SQLite databases are copied with SQLite's online backup API, which
gives a consistent copy while the stack writes to them (a plain file copy of a database in WAL mode can
miss committed pages); their ``-wal`` and ``-shm`` files, lock files and the supervisor's pid file are
left out. A restore checks every sum before it touches the folder, refuses while a stack started by
``make up`` runs on it, and moves what the folder held aside instead of deleting it.

An archive holds served data, so archives are not kept forever either: after each backup, :func:`prune`
deletes the archives of this naming pattern in the same folder that were taken longer ago than the backup
retention period, and nothing else.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import os
import re
import shutil
import sqlite3
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"
STAMP = "%Y%m%dT%H%M%SZ"  # UTC, in every archive's name: when the backup was taken
ARCHIVE = re.compile(r"heartrisk-state-(\d{8}T\d{6}Z)\.tar\.gz")
DAY_SECONDS = 86_400
SQLITE_HEADER = b"SQLite format 3\x00"
SKIPPED_SUFFIXES = ("-wal", "-shm", "-journal", ".lock", ".pid")


class BackupError(Exception):
    """A restore that must not go ahead, with the reason (the state folder is untouched)."""


@dataclass(frozen=True)
class Backup:
    archive: Path
    files: int
    bytes: int


@dataclass(frozen=True)
class Restore:
    state_dir: Path
    files: int
    previous: Path | None  # where the folder's former content went, if it had any


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER


def _copy_sqlite(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent snapshot, even while another process writes."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def _kept(path: Path) -> bool:
    return path.is_file() and not path.is_symlink() and not path.name.endswith(SKIPPED_SUFFIXES)


def backup(state_dir: Path, to: Path) -> Backup:
    """Write ``heartrisk-state-<UTC time>.tar.gz`` into ``to`` (created if missing) from ``state_dir``."""
    state_dir = state_dir.resolve()
    if not state_dir.is_dir():
        raise BackupError(f"no state folder at {state_dir}: nothing to back up")
    to = to.resolve()
    to.mkdir(parents=True, exist_ok=True)
    archive = to / time.strftime(f"heartrisk-state-{STAMP}.tar.gz", time.gmtime())
    entries: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="heartrisk-backup-") as scratch:
        staged = Path(scratch)
        for path in sorted(p for p in state_dir.rglob("*") if _kept(p) and to not in p.parents):
            name = path.relative_to(state_dir).as_posix()
            copy = staged / name
            copy.parent.mkdir(parents=True, exist_ok=True)
            if _is_sqlite(path):
                _copy_sqlite(path, copy)
            else:
                shutil.copy2(path, copy)
            entries[name] = {"bytes": copy.stat().st_size, "sha256": _sha256(copy)}
        manifest = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": entries}
        (staged / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        partial = archive.with_name(archive.name + ".part")
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(staged, arcname=".")
        partial.chmod(0o600)  # health data
        partial.replace(archive)
    return Backup(archive, len(entries), sum(int(e["bytes"]) for e in entries.values()))


def taken_at(name: str) -> float | None:
    """When the archive of this file name was taken (epoch seconds), or ``None`` for a name not of ours."""
    match = ARCHIVE.fullmatch(name)
    if match is None:
        return None
    try:
        return float(calendar.timegm(time.strptime(match.group(1), STAMP)))
    except ValueError:  # the pattern's digits, but no date
        return None


def prune(folder: Path, retention_days: float, *, now: float | None = None) -> list[Path]:
    """Delete the archives in ``folder`` taken more than ``retention_days`` ago; ``0`` keeps them all.

    Only regular files named as :func:`backup` names them count, by the time in their name (when the backup
    was taken; copying the folder elsewhere changes the files' times, not their names). Anything else in the
    folder, sub-folders, links and unfinished ``.part`` files included, is never touched.
    """
    if retention_days <= 0:
        return []
    cutoff = (time.time() if now is None else now) - retention_days * DAY_SECONDS
    pruned = []
    for path in sorted(folder.iterdir()):
        taken = taken_at(path.name)
        if taken is not None and taken < cutoff and path.is_file() and not path.is_symlink():
            path.unlink()
            pruned.append(path)
    return pruned


def running_stack(state_dir: Path) -> int | None:
    """The pid of the ``make up`` supervisor using ``state_dir`` (its ``stack.pid``), if it is alive."""
    try:
        pid = int((state_dir / "stack.pid").read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def restore(archive: Path, state_dir: Path) -> Restore:
    """Unpack ``archive`` into ``state_dir`` after checking it whole; the folder's former content is moved
    to ``<state_dir>.before-restore-<UTC time>``."""
    state_dir = state_dir.resolve()
    if pid := running_stack(state_dir):
        raise BackupError(f"a stack runs on {state_dir} (pid {pid}): stop it first (make down)")
    state_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".restore-", dir=state_dir.parent) as scratch:
        unpacked = Path(scratch) / "state"
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(unpacked, filter="data")  # refuses absolute paths, links out, devices
        manifest = json.loads((unpacked / MANIFEST).read_text())
        for name, entry in manifest["files"].items():
            path = unpacked / name
            if not path.is_file() or _sha256(path) != entry["sha256"]:
                raise BackupError(f"{archive}: {name} is missing or does not match its checksum; nothing restored")
        (unpacked / MANIFEST).unlink()
        previous = None
        if state_dir.exists() and any(state_dir.iterdir()):
            previous = state_dir.with_name(
                time.strftime(f"{state_dir.name}.before-restore-%Y%m%dT%H%M%SZ", time.gmtime())
            )
            state_dir.rename(previous)
        elif state_dir.exists():
            state_dir.rmdir()
        unpacked.rename(state_dir)
        state_dir.chmod(0o700)
    return Restore(state_dir, len(manifest["files"]), previous)
