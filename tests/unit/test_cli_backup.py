"""``heartrisk scale-backup``: its arguments, a restore's target time, and no action without the stack's store."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from heartrisk import cli
from heartrisk.cli_args import build_parser
from heartrisk.cli_backup import _target


def test_the_actions_and_their_arguments() -> None:
    parser = build_parser()
    assert parser.parse_args(["scale-backup", "now"]).type == "full"
    assert parser.parse_args(["scale-backup", "now", "--type", "diff"]).type == "diff"
    assert parser.parse_args(["scale-backup", "restore-objects", "20261204-010000F"]).label == "20261204-010000F"
    assert parser.parse_args(["s3-server", "mini", "-dir=/state", "-s3.port=8333"]).weed == [
        "mini", "-dir=/state", "-s3.port=8333",
    ]  # fmt: skip
    with pytest.raises(SystemExit):
        parser.parse_args(["scale-backup", "now", "--type", "weekly"])


def test_a_target_time_needs_its_zone() -> None:
    assert _target(None) is None
    assert _target("2026-12-04 21:00:00+00") == datetime(2026, 12, 4, 21, tzinfo=UTC)
    assert _target("2026-12-04T22:00:00+01:00") == datetime(2026, 12, 4, 21, tzinfo=UTC)
    with pytest.raises(ValueError, match="with its zone"):
        _target("2026-12-04 21:00:00")


def test_without_the_stacks_store_nothing_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.delenv("HEARTRISK_BACKUP_S3_ENDPOINT", raising=False)
    assert cli.main(["scale-backup", "now"]) == 2
    assert "HEARTRISK_BACKUP_S3_ENDPOINT is not set" in capsys.readouterr().err
