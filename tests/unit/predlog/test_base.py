"""The prediction log's interface, on both backends (SQLite file, real PostgreSQL): rows in schema order,
one per record, trimmed by age; a monitoring window sampled in the query when it is larger than asked."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pytest

from heartrisk.data import load_csv
from heartrisk.predlog import DAY_SECONDS, SERVED, LogUnavailable, PredictionLog, Purged, base, open_log
from heartrisk.schema import FEATURE_NAMES
from tests.support.paths import HEART
from tests.support.predlog import count as count_rows
from tests.support.predlog import logged


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
    whole = logged(log)
    assert count_rows(log) == len(whole) == len(features)
    assert set(whole["request_id"]) == {f"r{i}" for i in range(6)}
    assert (whole["model_version"] == "3").all() and (whole["probability"] == 0.25).all()
    assert (whole["label"] == 0).all() and str(whole["ts"].dt.tz) == "UTC"
    by_request = whole.sort_values(["request_id", "ts"], kind="stable")  # each request's rows stay in order
    expected = np.concatenate(parts)
    assert np.array_equal(by_request[list(FEATURE_NAMES)].to_numpy(), expected)
    only = log.window().frame[list(FEATURE_NAMES)]
    assert sorted(map(tuple, only.to_numpy())) == sorted(map(tuple, expected))  # the same rows, any order


def test_the_window_leaves_out_older_rows(log: PredictionLog) -> None:
    log.append(np.ones((2, len(FEATURE_NAMES))), [0.5, 0.5], [1, 1], model_version="1", request_id="a")
    assert log.window(days=1).rows == 2
    empty = log.window(days=-1).frame  # a window that starts tomorrow
    assert empty.shape == (0, len(SERVED)) and (empty.dtypes == "float64").all()


def _append_at(log: PredictionLog, monkeypatch: pytest.MonkeyPatch, days_ago: float, rows: int, rid: str) -> None:
    """Append as if it were ``days_ago`` days ago (the log's clock only)."""
    then = time.time() - days_ago * DAY_SECONDS
    with monkeypatch.context() as patch:
        patch.setattr(base, "time", SimpleNamespace(time=lambda: then))
        features = np.full((rows, len(FEATURE_NAMES)), float(days_ago))
        log.append(features, [0.5] * rows, [1] * rows, model_version="1", request_id=rid)


def test_purge_deletes_exactly_the_rows_older_than_the_period(log: PredictionLog, monkeypatch) -> None:
    for days_ago, rows, rid in ((400, 2, "year-old"), (200, 3, "old"), (10, 4, "recent"), (0, 5, "today")):
        _append_at(log, monkeypatch, days_ago, rows, rid)
    assert counts(log.purge(older_than_days=0)) == (0, 14)  # 0 keeps everything
    assert counts(log.purge(older_than_days=180)) == (5, 9)
    assert set(logged(log)["request_id"]) == {"recent", "today"}
    assert counts(log.purge(older_than_days=180)) == (0, 9)
    assert counts(log.purge(older_than_days=5)) == (4, 5)
    assert log.window().frame["age"].tolist() == [0.0] * 5


def counts(purged: Purged) -> tuple[int, int]:
    return purged.deleted, purged.remaining


def test_probabilities_and_labels_must_match_the_records(log: PredictionLog) -> None:
    with pytest.raises(ValueError, match="one probability and one label per record"):
        log.append(np.ones((2, len(FEATURE_NAMES))), [0.5], [1, 1], model_version="1", request_id="a")
    assert count_rows(log) == 0


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
    assert count_rows(log) == 0


def _numbered(log: PredictionLog, rows: int, versions: dict[str, int]) -> None:
    """``rows`` rows whose ``age`` is their number (0, 1, ...) and probability the number / rows, served by the
    given model versions in turn (each its share of the rows, in order: a promotion in the window)."""
    start = 0
    for version, count in versions.items():
        features = np.zeros((count, len(FEATURE_NAMES)))
        features[:, 0] = np.arange(start, start + count)
        probabilities = features[:, 0] / rows
        log.append(
            features, probabilities, (probabilities >= 0.5).astype(int), model_version=version, request_id=version
        )
        start += count
    assert start == rows


def test_a_window_that_fits_comes_whole_with_its_rows_per_model_version(log: PredictionLog) -> None:
    _numbered(log, 300, {"3": 200, "4": 100})
    window = log.window(days=1, max_rows=300, seed=7)
    assert (window.rows, len(window.frame), window.versions) == (300, 300, {"3": 200, "4": 100})
    assert list(window.frame.columns) == [*FEATURE_NAMES, "probability", "label"]
    assert sorted(window.frame["age"]) == list(range(300))
    assert (window.frame["label"] == (window.frame["probability"] >= 0.5)).all()
    assert log.window(days=-1).rows == 0 and log.window(days=-1).frame.empty


def test_a_larger_window_is_sampled_in_the_query_uniformly_and_seeded(log: PredictionLog) -> None:
    rows, wanted = 20_000, 2_000
    _numbered(log, rows, {"3": 15_000, "4": 5_000})
    window = log.window(days=1, max_rows=wanted, seed=7)
    assert (window.rows, len(window.frame)) == (rows, wanted)  # trimmed to the exact count
    assert window.versions == {"3": 15_000, "4": 5_000}  # counted over the whole window, not the sample
    drawn = window.frame["age"].to_numpy()
    assert len(set(drawn)) == wanted and set(drawn) <= set(range(rows))  # real rows, none twice
    assert window.frame["probability"].to_numpy() == pytest.approx(drawn / rows)  # each row's own values
    # Uniform over the window: each tenth of it (by time of writing) holds about a tenth of the sample
    # (binomial: 200 +- 13), and no long run of consecutive rows comes together.
    per_tenth = np.bincount((drawn * 10 // rows).astype(int), minlength=10)
    assert per_tenth.min() > 150 and per_tenth.max() < 250, per_tenth
    ordered = np.sort(drawn)
    assert np.diff(ordered).max() < 150 and np.mean(np.diff(ordered) == 1) < 0.25
    again = log.window(days=1, max_rows=wanted, seed=7)
    assert sorted(again.frame["age"]) == sorted(drawn)  # the same seed draws the same rows
    other = log.window(days=1, max_rows=wanted, seed=8)
    assert len(set(other.frame["age"]) & set(drawn)) < wanted * 0.5  # another seed, another sample


def test_the_sample_is_drawn_by_the_database_before_any_row_leaves_it(
    log: PredictionLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    _numbered(log, 5_000, {"1": 5_000})
    fetched = []
    query = log._arrow

    def counted(sql: str):
        table = query(sql)
        fetched.append(table.num_rows)
        return table

    monkeypatch.setattr(log, "_arrow", counted)
    window = log.window(max_rows=500, seed=3)
    assert (window.rows, len(window.frame)) == (5_000, 500)
    assert 500 <= max(fetched) < 800  # about a tenth, plus the margin trimmed afterwards
