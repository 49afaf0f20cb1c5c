"""The files monitoring leaves on disk: its HTML reports, and the messages the local SMTP sink kept.

A file's age is its modification time: the report is written once by its run (``latest.html`` is a copy
made by the newest run), a message when the sink received it, and ``heartrisk restore`` (tar) keeps
these times. A folder that does not exist holds nothing to delete (no run wrote a report there yet, no
sink runs on this host); one that exists and cannot be read fails the kind.
"""

from __future__ import annotations

import mailbox
from datetime import datetime
from pathlib import Path

from heartrisk.purge.result import Swept

# Only the files the monitoring flow writes (monitoring/report.py): HEARTRISK_REPORT_DIR may be a folder
# that holds other files too, and the purge deletes nothing it did not make.
REPORT_FILES = ("drift-*.html", "latest.html", ".latest.html.tmp")


def purge_reports(report_dir: Path, before: datetime) -> Swept:
    """Delete the reports (and ``latest.html`` when it is as old: the newest run is that old) written before
    ``before``.

    ``latest.html`` goes with the others once it is older than the period, so the link to it fails rather
    than showing data the period no longer allows; the next monitoring run writes it again.
    """
    if not report_dir.is_dir():
        return Swept(0, f"{report_dir} (no such folder)")
    deleted = 0
    for pattern in REPORT_FILES:
        for path in report_dir.glob(pattern):
            if path.is_file() and path.stat().st_mtime < before.timestamp():
                path.unlink()
                deleted += 1
    return Swept(deleted, str(report_dir))


def purge_mails(maildir: Path, before: datetime) -> Swept:
    """Delete the sink's messages delivered before ``before``, through the standard library's Maildir.

    Read and unread messages alike (``new/`` and ``cur/``); a message's delivery time is what
    :meth:`mailbox.MaildirMessage.get_date` says (the file's time).
    """
    if not maildir.exists():
        return Swept(0, f"{maildir} (no such folder: no mail sink here)")
    box = mailbox.Maildir(maildir, factory=None, create=False)
    deleted = 0
    for key in list(box.keys()):
        if box.get_message(key).get_date() < before.timestamp():
            box.remove(key)
            deleted += 1
    return Swept(deleted, str(maildir))
