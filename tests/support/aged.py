"""Things made as if some days ago, for the retention tests: predictions in a log, report files, mail in a
Maildir as the local SMTP sink keeps it, monitoring runs in MLflow."""

from __future__ import annotations

import mailbox
import os
import time
from email.message import EmailMessage
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from heartrisk.predlog import DAY_SECONDS, PredictionLog, base
from heartrisk.schema import FEATURE_NAMES


def ago(days: float) -> float:
    return time.time() - days * DAY_SECONDS


def served(log: PredictionLog, rows: int, days_ago: float, request_id: str) -> None:
    """``rows`` predictions logged ``days_ago`` days ago (the log stamps rows with its module's clock)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(base, "time", SimpleNamespace(time=lambda: ago(days_ago)))
        values = np.ones((rows, len(FEATURE_NAMES)))
        log.append(values, [0.5] * rows, [1] * rows, model_version="1", request_id=request_id)


def aged(path: Path, days_ago: float, text: str = "<html></html>") -> Path:
    """A file written ``days_ago`` days ago."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (ago(days_ago), ago(days_ago)))
    return path


def mailed(maildir: Path, subject: str, days_ago: float) -> None:
    """A message the sink received ``days_ago`` days ago (a Maildir file is named by its key)."""
    box = mailbox.Maildir(maildir, create=True)
    message = EmailMessage()
    message["Subject"] = subject
    message.set_content("HeartRisk: drift detected")
    key = box.add(message)
    (path,) = maildir.glob(f"*/{key}*")
    os.utime(path, (ago(days_ago), ago(days_ago)))


def subjects(maildir: Path) -> list[str]:
    return sorted(str(message["Subject"]) for message in mailbox.Maildir(maildir, create=False))
