"""The prediction log: rows in schema order, one per record, readable whole or as features only."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from heartrisk.data import load_csv
from heartrisk.predlog import PredictionLog
from heartrisk.schema import FEATURE_NAMES
from tests.support.paths import HEART


def test_rows_come_back_as_written_from_many_threads(tmp_path) -> None:
    features = load_csv(HEART)[list(FEATURE_NAMES)].to_numpy(dtype=float)
    log = PredictionLog(tmp_path / "p.sqlite")
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
    by_request = whole.sort_values(["request_id", "ts"], kind="stable")  # each request's rows stay in order
    expected = np.concatenate(parts)
    assert np.array_equal(by_request[list(FEATURE_NAMES)].to_numpy(), expected)
    only = log.features()
    assert list(only.columns) == list(FEATURE_NAMES)
    assert np.array_equal(only.to_numpy(), whole[list(FEATURE_NAMES)].to_numpy())


def test_the_window_leaves_out_older_rows(tmp_path) -> None:
    log = PredictionLog(tmp_path / "p.sqlite")
    log.append(np.ones((2, len(FEATURE_NAMES))), [0.5, 0.5], [1, 1], model_version="1", request_id="a")
    assert len(log.features(days=1)) == 2
    empty = log.features(days=-1)  # a window that starts tomorrow
    assert empty.shape == (0, len(FEATURE_NAMES)) and (empty.dtypes == "float64").all()


def test_features_are_read_from_a_path_that_needs_quoting_in_a_uri(tmp_path) -> None:
    log = PredictionLog(tmp_path / "state dir #1 ?%20" / "p.sqlite")
    log.append(np.full((3, len(FEATURE_NAMES)), 2.5), [0.5] * 3, [1] * 3, model_version="1", request_id="a")
    assert log.features().to_numpy().tolist() == [[2.5] * len(FEATURE_NAMES)] * 3


def test_probabilities_and_labels_must_match_the_records(tmp_path) -> None:
    log = PredictionLog(tmp_path / "p.sqlite")
    with pytest.raises(ValueError, match="one probability and one label per record"):
        log.append(np.ones((2, len(FEATURE_NAMES))), [0.5], [1, 1], model_version="1", request_id="a")
    assert log.count() == 0


def test_a_writer_waits_for_its_turn_on_the_lock_file_and_then_writes(tmp_path) -> None:
    """Another process holding the lock file makes an append wait for it, not fail or skip it."""
    import fcntl
    import os

    log = PredictionLog(tmp_path / "p.sqlite")
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
