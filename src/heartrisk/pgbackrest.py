"""pgBackRest, as the scale-out stack's backup service runs it: its commands, and what its ``info`` says.

pgBackRest (Debian's 2.45) keeps PostgreSQL's base backups and archived WAL in the S3 store's backups bucket; its
configuration is written at each container start by ``heartrisk-pgbackrest-conf`` (deploy/pgbackrest-conf.sh)
and found through ``PGBACKREST_CONFIG``. Its progress goes to stderr, so that a command's own last stdout line
stays its JSON.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Any

STANZA = "heartrisk"
KINDS = ("full", "diff", "incr")
CONFIGURE = "heartrisk-pgbackrest-conf"  # deploy/pgbackrest-conf.sh, in the images that run pgBackRest


class PgBackRestError(RuntimeError):
    """A pgBackRest command that failed, with its own last lines."""


def configure() -> None:
    """(Re)write this container's pgBackRest configuration from its secrets, where the image has the script (a
    one-off container of `make scale-restore` starts without one)."""
    if shutil.which(CONFIGURE):
        subprocess.run([CONFIGURE], check=True)


def run(*args: str, capture: bool = False, timeout: float | None = None) -> str:
    """``pgbackrest --stanza=heartrisk ARGS``; its stdout when ``capture``, else its lines go to stderr."""
    command = ["pgbackrest", f"--stanza={STANZA}", *args]
    done = subprocess.run(
        command,
        stdout=subprocess.PIPE if capture else sys.stderr,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        said = "\n".join((done.stderr or "").strip().splitlines()[-5:]) or (done.stdout or "").strip()[-800:]
        raise PgBackRestError(f"pgbackrest {args[0]} failed (exit {done.returncode}): {said}")
    return done.stdout or ""


@dataclass(frozen=True)
class BaseBackup:
    """One backup of the repository, as ``pgbackrest info`` lists it."""

    label: str  # e.g. 20261204-211128F, or 20261204-211128F_20261204-211140D for a differential
    kind: str  # full, diff or incr
    started: float  # Unix time
    stopped: float  # Unix time: a point-in-time restore to a later time can start from this backup
    database_bytes: int  # the cluster's size
    stored_bytes: int  # what this backup added to the repository (compressed)

    @property
    def stopped_at(self) -> str:
        return datetime.fromtimestamp(self.stopped).astimezone().isoformat(timespec="seconds")


def parse_info(text: str) -> list[BaseBackup]:
    """The backups of ``pgbackrest info --output=json`` for the stanza, oldest first (none when it is missing)."""
    stanzas: list[dict[str, Any]] = json.loads(text or "[]")
    found = [
        BaseBackup(
            label=item["label"],
            kind=item["type"],
            started=float(item["timestamp"]["start"]),
            stopped=float(item["timestamp"]["stop"]),
            database_bytes=int(item["info"]["size"]),
            stored_bytes=int(item["info"]["repository"]["delta"]),
        )
        for stanza in stanzas
        if stanza.get("name", STANZA) == STANZA
        for item in stanza.get("backup", [])
    ]
    return sorted(found, key=lambda backup: backup.stopped)


def backups() -> list[BaseBackup]:
    return parse_info(run("info", "--output=json", capture=True))


def choose(found: list[BaseBackup], complete: set[str], target: datetime | None = None) -> BaseBackup:
    """The backup to restore from: the newest complete one (its copies written, ``complete``), or with a target
    time the newest that had ended by then (PostgreSQL then replays the archived WAL up to the target)."""
    candidates = [b for b in found if b.label in complete]
    if target is not None:
        candidates = [b for b in candidates if b.stopped <= target.timestamp()]
    if not candidates:
        when = f" that had ended by {target.isoformat()}" if target else ""
        raise PgBackRestError(f"no complete backup{when} in the repository")
    return max(candidates, key=lambda backup: backup.stopped)
