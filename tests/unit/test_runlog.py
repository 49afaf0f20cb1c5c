"""Module warnings reach the run's log for the block only, and only from the named loggers (the path to
Prefect's API itself is checked by the monitoring integration test, against a real server)."""

from __future__ import annotations

import logging
from typing import ClassVar

import pytest

from heartrisk import runlog


class Recorder(logging.Handler):
    records: ClassVar[list[logging.LogRecord]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_only_the_named_loggers_records_inside_the_block_are_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runlog, "APILogHandler", Recorder)
    monkeypatch.setattr(Recorder, "records", [])
    copy, other = logging.getLogger("heartrisk.predlog.columnar"), logging.getLogger("heartrisk.serving")
    with runlog.in_run_log("heartrisk.predlog"):
        copy.warning("the window copy cannot be used")
        other.warning("not this one")
    copy.warning("after the block")
    assert [record.getMessage() for record in Recorder.records] == ["the window copy cannot be used"]
    assert not any(isinstance(h, Recorder) for h in logging.getLogger("heartrisk.predlog").handlers)
