"""The prediction log, on both backends (SQLite file, real PostgreSQL): rows in schema order, one per
record, readable whole or as features only, trimmed by age; the backend chosen from the target alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pytest

from heartrisk import predlog
from heartrisk.data import load_csv
from heartrisk.predlog import DAY_SECONDS, LogUnavailable, PredictionLog, open_log
from heartrisk.schema import FEATURE_NAMES
from tests.support.paths import HEART


@pytest.fixture
def log(log_target: str) -> Iterator[PredictionLog]:
    opened = open_log(log_target)
    yield opened
    opened.close()


def test_rows_come_back_as_written_from_many_threads(log: PredictionLog) -> None:
    features = load_csv(HEART)[list(FEATURE_NAMES)].to_numpy(dtype=float)
    parts = np.array_split(features, 6)
    threads = [
        threading.Thread(target=log.append, args=(part, [0.25] * len(part), [0] * len(part)),
                         kwargs={"model_version": "3", "request_id": f"r{i}"})
        for i, part in enumerate(parts)
    ]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    whole = log.read()
    assert log.count() == len(whole) == len(features)
    assert set(whole["request_id"]) == {f"r{i}" for i in range(6)}
    assert (whole["model_version"] == "3").all() and (whole["probability"] == 0.25).all()
    assert (whole["label"] == 0).all() and str(whole["ts"].dt.tz) == "UTC"
    by_request = whole.sort_values(["request_id", "ts"], kind="stable")  # each request's rows stay in order
    expected = np.concatenate(parts)
    assert np.array_equal(by_request[list(FEATURE_NAMES)].to_numpy(), expected)
    only = log.features()
    assert list(only.columns) == list(FEATURE_NAMES)
    assert sorted(map(tuple, only.to_numpy())) == sorted(map(tuple, expected))  # the same rows, any order


def test_the_window_leaves_out_older_rows(log: PredictionLog) -> None:
    log.append(np.ones((2, len(FEATURE_NAMES))), [0.5, 0.5], [1, 1], model_version="1", request_id="a")
    assert len(log.features(days=1)) == 2
    empty = log.features(days=-1)  # a window that starts tomorrow
    assert empty.shape == (0, len(FEATURE_NAMES)) and (empty.dtypes == "float64").all()
    assert log.read(days=-1).empty


def _append_at(log: PredictionLog, monkeypatch: pytest.MonkeyPatch, days_ago: float, rows: int, rid: str) -> None:
    """Append as if it were ``days_ago`` days ago (the log's clock only)."""
    then = time.time() - days_ago * DAY_SECONDS
    with monkeypatch.context() as patch:
        patch.setattr(predlog, "time", SimpleNamespace(time=lambda: then))
        features = np.full((rows, len(FEATURE_NAMES)), float(days_ago))
        log.append(features, [0.5] * rows, [1] * rows, model_version="1", request_id=rid)


def test_purge_deletes_exactly_the_rows_older_than_the_period(log: PredictionLog, monkeypatch) -> None:
    for days_ago, rows, rid in ((400, 2, "year-old"), (200, 3, "old"), (10, 4, "recent"), (0, 5, "today")):
        _append_at(log, monkeypatch, days_ago, rows, rid)
    assert log.purge(older_than_days=0) == predlog.Purged(deleted=0, remaining=14)  # 0 keeps everything
    assert log.purge(older_than_days=180) == predlog.Purged(deleted=5, remaining=9)
    assert set(log.read()["request_id"]) == {"recent", "today"}
    assert log.purge(older_than_days=180) == predlog.Purged(deleted=0, remaining=9)
    assert log.purge(older_than_days=5) == predlog.Purged(deleted=4, remaining=5)
    assert log.features()["age"].tolist() == [0.0] * 5


def test_probabilities_and_labels_must_match_the_records(log: PredictionLog) -> None:
    with pytest.raises(ValueError, match="one probability and one label per record"):
        log.append(np.ones((2, len(FEATURE_NAMES))), [0.5], [1, 1], model_version="1", request_id="a")
    assert log.count() == 0


@pytest.mark.parametrize(
    ("target", "backend", "where"),
    [
        ("/var/lib/heartrisk/p.sqlite", "sqlite", "/var/lib/heartrisk/p.sqlite"),
        (
            "postgresql://app:s3cret@db.internal:5433/log",  # pragma: allowlist secret
            "postgresql",
            "postgresql://app@db.internal:5433/log",
        ),
        ("postgres://app:s3cret@db/log", "postgresql", "postgresql://app@db/log"),  # pragma: allowlist secret
        ("postgresql+psycopg://app:s3cret@db/log", "postgresql", "postgresql://app@db/log"),  # pragma: allowlist secret
    ],
)
def test_the_target_alone_picks_the_backend_and_no_password_is_shown(target: str, backend: str, where: str) -> None:
    log = open_log(target)  # opening connects to nothing: the app starts while its database is down
    assert (log.backend, log.where) == (backend, where)


def test_an_unreachable_log_says_why_without_the_password(tmp_path) -> None:
    (tmp_path / "a-file").write_text("")
    url = "postgresql://app:s3cret@127.0.0.1:9/log"  # pragma: allowlist secret
    unreachable = [open_log(tmp_path / "a-file" / "p.sqlite"), open_log(url)]
    for log in unreachable:
        problem = log.problem()
        assert problem is not None and problem.startswith(f"prediction log {log.where} unreachable: ")
        assert "s3cret" not in problem
        with pytest.raises(LogUnavailable):
            log.append(np.ones((1, len(FEATURE_NAMES))), [0.5], [1], model_version="1", request_id="a")
        log.close()


def test_records_must_be_rows_of_the_thirteen_features(tmp_path) -> None:
    log = open_log(tmp_path / "p.sqlite")
    with pytest.raises(ValueError, match=r"one row of the 13 features per record, got shape \(1, 26\)"):
        log.append(np.ones((1, 26)), [0.5, 0.5], [1, 1], model_version="1", request_id="a")
    assert log.append(np.empty((0, len(FEATURE_NAMES))), [], [], model_version="1", request_id="a") == 0
    assert log.count() == 0


def test_a_writer_waits_for_its_turn_on_the_lock_file_and_then_writes(tmp_path) -> None:
    """Another process holding the lock file makes an append wait for it, not fail or skip it."""
    import fcntl
    import os

    log = open_log(tmp_path / "p.sqlite")
    assert log.count() == 0  # the table exists: migrating takes the same lock file, before the writer's turn
    other = os.open(tmp_path / "p.sqlite.lock", os.O_RDWR | os.O_CREAT)  # another open file: another writer
    fcntl.flock(other, fcntl.LOCK_EX)
    writer = threading.Thread(target=log.append, args=(np.zeros((1, len(FEATURE_NAMES))), [0.5], [1]),
                              kwargs={"model_version": "1", "request_id": "r"})  # fmt: skip
    writer.start()
    writer.join(0.5)
    assert writer.is_alive() and log.count() == 0
    fcntl.flock(other, fcntl.LOCK_UN)
    os.close(other)
    writer.join(10)
    assert not writer.is_alive() and log.count() == 1
