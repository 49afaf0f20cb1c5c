"""What the backup service reads from pgBackRest's ``info``, and which backup a restore starts from."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from heartrisk import pgbackrest

STOPS = {"20261204-010000F": 1796000060, "20261204-010000F_20261205-010000D": 1796086460}


def info(stanza: str = "heartrisk") -> str:
    backups = [
        {
            "label": label,
            "type": "diff" if label.endswith("D") else "full",
            "timestamp": {"start": stop - 50, "stop": stop},
            "info": {"size": 23_000_000, "delta": 1000, "repository": {"size": 3_000_000, "delta": 900 + i}},
        }
        for i, (label, stop) in enumerate(reversed(STOPS.items()))  # pgBackRest's order is not relied on
    ]
    return json.dumps([{"name": stanza, "backup": backups, "status": {"code": 0}}])


def test_info_lists_the_stanzas_backups_oldest_first_with_their_sizes() -> None:
    found = pgbackrest.parse_info(info())
    assert [(b.label, b.kind, b.stopped) for b in found] == [
        (label, kind, float(STOPS[label])) for label, kind in zip(STOPS, ("full", "diff"), strict=True)
    ]
    assert found[0].database_bytes == 23_000_000 and found[0].stored_bytes == 901
    assert pgbackrest.parse_info(info("other")) == [] and pgbackrest.parse_info("") == []
    missing = json.dumps([{"name": "heartrisk", "backup": [], "status": {"code": 1, "message": "missing stanza path"}}])
    assert pgbackrest.parse_info(missing) == []


def test_a_restore_starts_from_the_newest_complete_backup_or_the_newest_ended_by_the_target() -> None:
    found = pgbackrest.parse_info(info())
    full, diff = (b.label for b in found)
    assert pgbackrest.choose(found, {full, diff}).label == diff
    assert pgbackrest.choose(found, {full}).label == full  # the differential's copies never finished
    between = datetime.fromtimestamp(STOPS[diff] - 10, UTC)
    assert pgbackrest.choose(found, {full, diff}, between).label == full
    assert pgbackrest.choose(found, {full, diff}, datetime.fromtimestamp(STOPS[diff], UTC)).label == diff
    with pytest.raises(pgbackrest.PgBackRestError, match="no complete backup that had ended by"):
        pgbackrest.choose(found, {full, diff}, datetime.fromtimestamp(STOPS[full] - 1, UTC))
    with pytest.raises(pgbackrest.PgBackRestError, match="no complete backup in the repository"):
        pgbackrest.choose(found, set())


def test_a_failed_command_says_what_pgbackrest_said(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "pgbackrest"  # a stand-in on PATH: exits 55 with pgBackRest's kind of message
    fake.write_text("#!/bin/sh\necho 'ERROR: [055]: unable to load info file' >&2\nexit 55\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    with pytest.raises(pgbackrest.PgBackRestError, match=r"pgbackrest info failed \(exit 55\): ERROR: \[055\]"):
        pgbackrest.run("info", capture=True)
