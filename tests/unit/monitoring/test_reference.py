"""The reference data with the champion's scores on it: as the app would score it, once per champion."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from heartrisk.config import get_settings
from heartrisk.data import load_csv
from heartrisk.monitoring import reference as monitored_reference
from heartrisk.monitoring.reference import champion_scores
from heartrisk.schema import FEATURE_NAMES
from tests.support.paths import REFERENCE

# The app's rule is applied to a float array in schema order (see heartrisk.scoring).
pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


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
    monkeypatch.setattr(monitored_reference.Registry, "of", classmethod(lambda cls, settings: registry))
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
    monkeypatch.setattr(monitored_reference.Registry, "of", classmethod(lambda cls, settings: empty))
    settings = dataclasses.replace(get_settings(), state_dir=tmp_path)
    frame, note = monitored_reference.read_reference.fn(str(REFERENCE), settings, True)
    assert "probability" not in frame.columns and len(frame) == len(load_csv(REFERENCE))
    assert note.startswith("the champion could not score the reference data: no champion yet")
    plain, why = monitored_reference.read_reference.fn(str(REFERENCE), settings, False)
    assert isinstance(plain, pd.DataFrame) and "no served predictions" in why


def test_the_cached_scores_are_read_without_loading_the_serving_code(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pipeline: Any
) -> None:
    """Flask and the rest of the app cost about 0.5 s of imports, in every monitoring run."""
    monkeypatch.setattr(monitored_reference.Registry, "of", classmethod(lambda cls, settings: FakeRegistry(pipeline)))
    settings = dataclasses.replace(get_settings(), state_dir=tmp_path)
    expected, _ = champion_scores(settings, REFERENCE, load_csv(REFERENCE))  # the champion scores once
    script = f"""
import dataclasses, sys
from pathlib import Path
from types import SimpleNamespace
from heartrisk.monitoring import reference as monitored_reference
from heartrisk.config import get_settings
from heartrisk.data import load_csv
registry = SimpleNamespace(name="UnitModel", champion=lambda: SimpleNamespace(version="7", fingerprint="f1"))
monitored_reference.Registry.of = classmethod(lambda cls, settings: registry)
settings = dataclasses.replace(get_settings(), state_dir=Path({str(tmp_path)!r}))
scores, version = monitored_reference.champion_scores(settings, Path({str(REFERENCE)!r}), load_csv({str(REFERENCE)!r}))
print(version, round(scores["probability"].sum(), 6), "heartrisk.serving" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["7", str(round(expected["probability"].sum(), 6)), "False"]
