"""The reports and the mail sink's messages older than the cut-off go, and only those: newer ones, files the
monitoring flow did not write, a folder that is not there; a maildir that cannot be read fails."""

from __future__ import annotations

import mailbox
import os
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from heartrisk.purge.files import purge_mails, purge_reports

NOW = time.time()
BEFORE = datetime.fromtimestamp(NOW, UTC) - timedelta(days=30)


def written(path: Path, days_ago: float, text: str = "<html></html>") -> Path:
    path.write_text(text)
    then = NOW - days_ago * 86400
    os.utime(path, (then, then))
    return path


def test_old_reports_go_with_an_old_latest_and_nothing_else(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    old = [written(reports / f"drift-2026010{day}T000000000000Z.html", 40 + day) for day in range(3)]
    new = written(reports / "drift-20261201T000000000000Z.html", 1)
    latest = written(reports / "latest.html", 1)
    other = written(reports / "notes.txt", 400, "the operator's own file")
    swept = purge_reports(reports, BEFORE)
    assert (swept.deleted, swept.where) == (3, str(reports))
    assert not any(path.exists() for path in old)
    assert new.exists() and latest.exists() and other.exists()

    written(latest, 31)  # the newest run is older than the period: its copy goes too
    assert purge_reports(reports, BEFORE).deleted == 1
    assert sorted(p.name for p in reports.iterdir()) == ["drift-20261201T000000000000Z.html", "notes.txt"]


def test_a_report_folder_that_is_not_there_holds_nothing(tmp_path: Path) -> None:
    swept = purge_reports(tmp_path / "reports", BEFORE)
    assert swept.deleted == 0 and swept.where.endswith("(no such folder)")


def message(subject: str) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = subject
    mail.set_content("drift detected")
    return mail


def test_sink_messages_older_than_the_cut_off_go_read_or_unread(tmp_path: Path) -> None:
    box = mailbox.Maildir(tmp_path / "mail", create=True)  # what the sink (aiosmtpd's Mailbox) writes
    ages = {"old unread": 45, "old read": 31, "new": 2}
    for subject, days_ago in ages.items():
        key = box.add(message(subject))
        if subject == "old read":
            kept = box.get_message(key)
            kept.set_subdir("cur")
            box[key] = kept
        (path,) = (tmp_path / "mail").glob(f"*/{key}*")  # a Maildir file is named by its key
        then = NOW - days_ago * 86400
        os.utime(path, (then, then))
    assert {d.name: len(list((tmp_path / "mail" / d.name).iterdir())) for d in (tmp_path / "mail").iterdir()} == {
        "new": 2, "cur": 1, "tmp": 0}  # fmt: skip
    swept = purge_mails(tmp_path / "mail", BEFORE)
    assert swept.deleted == 2
    assert [m["Subject"] for m in mailbox.Maildir(tmp_path / "mail", create=False)] == ["new"]


def test_no_sink_folder_holds_nothing_and_a_folder_that_is_no_maildir_fails(tmp_path: Path) -> None:
    assert purge_mails(tmp_path / "mail", BEFORE).deleted == 0
    (tmp_path / "mail").mkdir()
    with pytest.raises(FileNotFoundError):
        purge_mails(tmp_path / "mail", BEFORE)
