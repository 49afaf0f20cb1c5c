"""What a monitoring run watches: a CSV as its own window, or the log's window with the served answers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from heartrisk.monitoring.current import read_current
from heartrisk.predlog import open_log
from heartrisk.schema import FEATURE_NAMES
from heartrisk.settings import Settings
from tests.support.paths import HEART, REFERENCE


def test_a_csv_is_a_window_of_its_own_rows() -> None:
    current = read_current.fn(str(REFERENCE), None, 7)  # no settings needed for a CSV
    assert current.rows == len(current.frame) > 0 and current.sampled_rows is None and current.versions == {}
    assert current.source == str(REFERENCE) and "probability" not in current.frame


def test_the_logs_window_carries_the_answers_and_says_when_it_was_sampled(settings: Settings) -> None:
    records = pd.read_csv(HEART)[list(FEATURE_NAMES)].to_numpy(dtype=float)[:200]
    log = open_log(settings.predictions_db)
    log.append(records[:150], [0.25] * 150, [0] * 150, model_version="3", request_id="a")
    log.append(records[150:], [0.75] * 50, [1] * 50, model_version="4", request_id="b")
    log.close()
    whole = read_current.fn(None, settings, 7)
    assert (whole.rows, whole.sampled_rows, whole.versions) == (200, None, {"3": 150, "4": 50})
    assert whole.frame["label"].dtype == np.int64 and sorted(set(whole.frame["probability"])) == [0.25, 0.75]
    sampled = read_current.fn(
        None, dataclasses.replace(settings, drift=dataclasses.replace(settings.drift, max_rows=100)), 7
    )
    assert (sampled.rows, sampled.sampled_rows, sampled.versions) == (200, 100, {"3": 150, "4": 50})
    assert sampled.source.startswith("prediction log ") and sampled.source.endswith("last 7 days")
