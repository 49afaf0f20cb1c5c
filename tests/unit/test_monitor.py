"""The monitoring rules, without Prefect: when to mail, when to retrain, and what the mail says; the
champion's scores of the reference data, kept per champion."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from heartrisk import monitor
from heartrisk.config import get_settings
from heartrisk.data import load_csv
from heartrisk.drift import ColumnDrift, DriftResult, PredictionDrift
from heartrisk.monitor import Decision, _act, _message, champion_scores, decide
from heartrisk.schema import FEATURE_NAMES
from heartrisk.summaries import MonitorSummary
from tests.support.paths import REFERENCE

# The app's rule is applied to a float array in schema order (see serving/model_holder).
pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


def result(share: float, threshold: float = 0.5) -> DriftResult:
    column = ColumnDrift("age", "numeric", "K-S p_value", 0.001 if share else 0.6, 0.05, bool(share))
    return DriftResult(share, int(share > 0), threshold, (column,))


@pytest.mark.parametrize(
    ("drift", "recipients", "retrain", "quiet", "expected"),
    [
        (result(0.6), True, True, True, Decision("drift", mail=True, retrain=True)),
        (result(0.6), True, False, False, Decision("drift", mail=True, retrain=False)),
        (result(0.6), False, True, True, Decision("drift", mail=False, retrain=True)),
        (
            result(0.5, threshold=0.5),
            True,
            True,
            False,
            Decision("drift", mail=True, retrain=True),
        ),  # share = threshold
        (result(0.49), True, True, True, Decision("no drift", mail=True, retrain=False)),  # one column is not drift
        (result(0.2), True, True, False, Decision("no drift", mail=False, retrain=False)),
        (None, True, True, True, Decision("not enough data", mail=True, retrain=False)),
        (None, True, True, False, Decision("not enough data", mail=False, retrain=False)),
        (None, False, True, True, Decision("not enough data", mail=False, retrain=False)),
    ],
)
def test_decide(drift: DriftResult | None, recipients: bool, retrain: bool, quiet: bool, expected: Decision) -> None:
    assert decide(drift, has_recipients=recipients, retrain_on_drift=retrain, mail_when_quiet=quiet) == expected


def predictions_moved(moved: bool) -> PredictionDrift:
    probability = ColumnDrift("probability", "prediction", "K-S p_value", 1e-9 if moved else 0.4, 0.05, moved)
    label = ColumnDrift("label", "prediction", "Z-test p_value", 0.5, 0.05, False)
    return PredictionDrift(probability, label, (0.6, 0.4), (0.6, 0.3))


@pytest.mark.parametrize("quiet", [True, False])
def test_prediction_drift_alone_always_mails_and_never_retrains(quiet: bool) -> None:
    moved = replace(result(0.2), prediction=predictions_moved(True))
    decision = decide(moved, has_recipients=True, retrain_on_drift=True, mail_when_quiet=quiet)
    assert decision == Decision("no drift", mail=True, retrain=False)
    steady = replace(result(0.2), prediction=predictions_moved(False))
    assert decide(steady, has_recipients=True, retrain_on_drift=True, mail_when_quiet=quiet).mail is quiet
    assert decide(moved, has_recipients=False, retrain_on_drift=True, mail_when_quiet=quiet).mail is False


def test_drift_with_retraining_off_says_so_and_starts_nothing() -> None:
    run, actions, error = asyncio.run(_act(Decision("drift", True, False), result(0.6), "flow/deployment"))
    assert run is None and error == ""
    assert actions == ["Retraining is switched off (--no-retrain or HEARTRISK_RETRAIN_ON_DRIFT=false)."]
    assert asyncio.run(_act(Decision("no drift", True, False), result(0.1), "flow/deployment")) == (None, [], "")


def test_the_message_follows_the_outcome() -> None:
    summary = MonitorSummary("log", "ref.csv", 12, 303, 0.5, "not enough data", False, None, [])
    assert _message(summary, None, [], 30).subject == "HeartRisk: not enough data (12 of 30 rows)"
    drifted = MonitorSummary("log", "ref.csv", 300, 303, 0.5, "drift", True, 0.6, ["age"], report_path="r.html")
    assert _message(drifted, result(0.6), ["did X"], 30).subject == "HeartRisk: drift detected (60% of columns)"


class FakeRegistry:
    """A registry whose champion is a fitted pipeline; counts the loads."""

    name = "UnitModel"

    def __init__(self, pipeline: Any, version: str = "7") -> None:
        self.pipeline, self.version, self.loads = pipeline, version, 0

    def champion(self) -> Any:
        return SimpleNamespace(version=self.version, fingerprint="f1")

    def load_sklearn(self, version: str) -> Any:
        assert version == self.version
        self.loads += 1
        return self.pipeline


def test_the_champion_scores_the_reference_as_the_app_would_and_once_per_champion(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pipeline: Any
) -> None:
    registry = FakeRegistry(pipeline)
    monkeypatch.setattr(monitor.Registry, "of", classmethod(lambda cls, settings: registry))
    settings = dataclasses.replace(get_settings(), state_dir=tmp_path)
    reference = load_csv(REFERENCE)
    scores, version = champion_scores(settings, REFERENCE, reference)
    expected = pipeline.predict_proba(reference[list(FEATURE_NAMES)])[:, list(pipeline.classes_).index(1)]
    assert version == "7" and scores["probability"].to_numpy() == pytest.approx(expected)
    assert (scores["label"] == (expected >= 0.5)).all()
    again, _ = champion_scores(settings, REFERENCE, reference)
    assert registry.loads == 1 and again["probability"].to_numpy() == pytest.approx(expected)  # from the cache
    registry.version = "8"  # a promotion: the new champion scores the reference
    champion_scores(settings, REFERENCE, reference)
    assert registry.loads == 2
    assert len(list((tmp_path / "reference-scores").glob("*.csv"))) == 2


def test_without_a_champion_the_reference_has_no_predictions_and_says_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty = SimpleNamespace(name="UnitModel", champion=lambda: None)
    monkeypatch.setattr(monitor.Registry, "of", classmethod(lambda cls, settings: empty))
    settings = dataclasses.replace(get_settings(), state_dir=tmp_path)
    frame, note = monitor.read_reference.fn(str(REFERENCE), settings, True)
    assert "probability" not in frame.columns and len(frame) == len(load_csv(REFERENCE))
    assert note.startswith("the champion could not score the reference data: no champion yet")
    plain, why = monitor.read_reference.fn(str(REFERENCE), settings, False)
    assert isinstance(plain, pd.DataFrame) and "no served predictions" in why


def test_the_cached_scores_are_read_without_loading_the_serving_code(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pipeline: Any
) -> None:
    """Flask and the rest of the app cost about 0.5 s of imports, in every monitoring run."""
    monkeypatch.setattr(monitor.Registry, "of", classmethod(lambda cls, settings: FakeRegistry(pipeline)))
    settings = dataclasses.replace(get_settings(), state_dir=tmp_path)
    expected, _ = champion_scores(settings, REFERENCE, load_csv(REFERENCE))  # the champion scores once
    script = f"""
import dataclasses, sys
from pathlib import Path
from types import SimpleNamespace
from heartrisk import monitor
from heartrisk.config import get_settings
from heartrisk.data import load_csv
registry = SimpleNamespace(name="UnitModel", champion=lambda: SimpleNamespace(version="7", fingerprint="f1"))
monitor.Registry.of = classmethod(lambda cls, settings: registry)
settings = dataclasses.replace(get_settings(), state_dir=Path({str(tmp_path)!r}))
scores, version = monitor.champion_scores(settings, Path({str(REFERENCE)!r}), load_csv({str(REFERENCE)!r}))
print(version, round(scores["probability"].sum(), 6), "heartrisk.serving" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["7", str(round(expected["probability"].sum(), 6)), "False"]


def test_the_heap_that_exists_at_the_start_is_frozen_for_the_run_and_only_then() -> None:
    assert gc.get_freeze_count() == 0
    with monitor.long_lived_frozen():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
    gc.freeze()  # a caller that froze the heap itself
    try:
        with monitor.long_lived_frozen():
            pass
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
