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

from heartrisk import signing
from heartrisk.config import get_settings
from heartrisk.data import load_csv
from heartrisk.monitoring import reference as monitored_reference
from heartrisk.monitoring.reference import champion_scores
from heartrisk.registry import StoredModel
from heartrisk.schema import FEATURE_NAMES
from tests.support.paths import REFERENCE

# The app's rule is applied to a float array in schema order (see heartrisk.scoring).
pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


class FakeRegistry:
    """A registry whose champion is a fitted pipeline; counts the loads; refuses what ``untrusted`` says."""

    name = "UnitModel"

    def __init__(self, pipeline: Any, version: str = "7") -> None:
        self.pipeline, self.version, self.loads = pipeline, version, 0
        self.untrusted: signing.Untrusted | None = None  # raised by the signature check
        self.changed: signing.Untrusted | None = None  # raised by the load (the files' check)

    def champion(self) -> Any:
        return SimpleNamespace(version=self.version, fingerprint="f1", signature=f"signed v{self.version}")

    def check_signature(self, champion: Any) -> None:
        if self.untrusted is not None:
            raise self.untrusted

    def load(self, version: str) -> StoredModel:
        assert version == self.version
        self.loads += 1
        if self.changed is not None:
            raise self.changed
        return StoredModel(self.pipeline)


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


@pytest.mark.parametrize(
    "refusal",
    [
        signing.Unsigned("UnitModel version 7", "unsigned (no heartrisk.signature tag)"),
        signing.OtherKey("UnitModel version 7", "signed by another key (a), not this stack's (b)"),
        signing.KeyMissing("no model verify key at /keys/model-verify.pem"),
    ],
    ids=["unsigned", "other key", "no verify key"],
)
def test_a_champion_that_must_not_load_stops_the_run_with_the_reason_even_when_its_scores_are_cached(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pipeline: Any, refusal: Exception
) -> None:
    """Unlike "no champion yet" (a note, the run goes on): the app refuses that version too, the operator must act."""
    registry = FakeRegistry(pipeline)
    monkeypatch.setattr(monitored_reference.Registry, "of", classmethod(lambda cls, settings: registry))
    settings = dataclasses.replace(get_settings(), state_dir=tmp_path)
    monitored_reference.read_reference.fn(str(REFERENCE), settings, True)  # scored and cached while it was trusted
    registry.untrusted = refusal  # e.g. the signature tag was removed or replaced since
    with pytest.raises(type(refusal), match=str(refusal).split(":")[0]):
        monitored_reference.read_reference.fn(str(REFERENCE), settings, True)
    assert registry.loads == 1


def test_a_champion_whose_files_changed_stops_the_run_and_nothing_is_scored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pipeline: Any
) -> None:
    registry = FakeRegistry(pipeline)
    registry.changed = signing.Changed("UnitModel version 7", "model.skops changed after signing")
    monkeypatch.setattr(monitored_reference.Registry, "of", classmethod(lambda cls, settings: registry))
    settings = dataclasses.replace(get_settings(), state_dir=tmp_path)
    with pytest.raises(signing.Changed, match=r"UnitModel version 7: model\.skops changed after signing"):
        monitored_reference.read_reference.fn(str(REFERENCE), settings, True)
    assert not (tmp_path / "reference-scores").exists()


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
champion = SimpleNamespace(version="7", fingerprint="f1", signature="signed v7")
registry = SimpleNamespace(name="UnitModel", champion=lambda: champion, check_signature=lambda champion: None)
monitored_reference.Registry.of = classmethod(lambda cls, settings: registry)
settings = dataclasses.replace(get_settings(), state_dir=Path({str(tmp_path)!r}))
scores, version = monitored_reference.champion_scores(settings, Path({str(REFERENCE)!r}), load_csv({str(REFERENCE)!r}))
print(version, round(scores["probability"].sum(), 6), "heartrisk.serving" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["7", str(round(expected["probability"].sum(), 6)), "False"]
