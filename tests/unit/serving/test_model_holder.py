"""The model holder's rules, with a fake registry: swap only after a load, keep the last good model, refuse a
version the registry says must not load (unsigned, another key, changed), serve a version's ONNX export only
after it agreed with scikit-learn here."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import pytest

from heartrisk import export, signing
from heartrisk.config import get_settings
from heartrisk.data import load_csv
from heartrisk.registry import StoredModel
from heartrisk.schema import FEATURE_NAMES, VALID_RECORD, as_matrix
from heartrisk.serving.model_holder import ModelHolder, Refusal
from heartrisk.tracking import TrainingInProgress
from tests.support.models import fit_pipeline, training_rows

# The pipelines are given float arrays in schema order (see model_holder).
pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


class ConstantModel:
    """A fitted-looking classifier answering one probability: enough to tell versions apart."""

    classes_ = np.array([0, 1])

    def __init__(self, probability: float, columns: tuple[str, ...] = FEATURE_NAMES) -> None:
        self.probability = probability
        self.feature_names_in_ = np.array(columns, dtype=object)

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        assert matrix.shape[1] == len(FEATURE_NAMES)
        return np.tile([1 - self.probability, self.probability], (len(matrix), 1))


class FakeRegistry:
    """Stands in for MLflow: an alias, versions, and a switch to make it unreachable."""

    def __init__(self) -> None:
        self.champion: str | None = None
        self.models: dict[str, Any] = {}
        self.reachable = True
        self.loads: list[str] = []
        self.running: TrainingInProgress | None = None

    def champion_version(self) -> str | None:
        if not self.reachable:
            raise ConnectionError("connection refused")
        return self.champion

    def training(self) -> TrainingInProgress | None:
        return self.running

    def load(self, version: str) -> StoredModel:
        self.loads.append(version)
        model = self.models[version]
        if isinstance(model, Exception):
            raise model
        return model if isinstance(model, StoredModel) else StoredModel(model, None, "not exported")


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def holder(registry: FakeRegistry) -> ModelHolder:
    base = get_settings()
    settings = dataclasses.replace(
        base,
        mlflow=dataclasses.replace(base.mlflow, model_name="M"),
        app=dataclasses.replace(base.app, model_poll_seconds=0.05),
    )
    return ModelHolder(settings, source=registry)


def test_no_champion_yet_means_no_model_and_a_reason(holder: ModelHolder, registry: FakeRegistry) -> None:
    holder.refresh()
    status = holder.status()
    assert status.model is None
    assert status.mlflow_reachable is True
    assert "no model 'M' with alias 'champion'" in status.problem
    assert status.training is None
    registry.running = TrainingInProgress("hyperopt-50-trials", time.time() - 12, None)
    holder.refresh()
    assert holder.status().training == registry.running  # what the advice on the form and API is built from
    registry.models, registry.champion = {"1": ConstantModel(0.2)}, "1"
    holder.refresh()
    assert holder.status().training is None


def test_loads_the_champion_once_and_swaps_to_a_new_version(holder: ModelHolder, registry: FakeRegistry) -> None:
    registry.models = {"1": ConstantModel(0.2), "2": ConstantModel(0.9)}
    registry.champion = "1"
    holder.refresh()
    holder.refresh()
    assert registry.loads == ["1"]
    first = holder.model
    assert first is not None
    assert first.version == "1"
    registry.champion = "2"
    holder.refresh()
    assert holder.model.version == "2"
    assert holder.model.predict(as_matrix([VALID_RECORD]))[0].tolist() == [0.9]
    assert first.predict(as_matrix([VALID_RECORD]))[0].tolist() == [0.2]  # a request holding v1 finishes with v1
    assert holder.status().problem == ""


def test_keeps_the_last_good_model_when_mlflow_is_unreachable(holder: ModelHolder, registry: FakeRegistry) -> None:
    registry.models = {"1": ConstantModel(0.2)}
    registry.champion = "1"
    holder.refresh()
    registry.reachable = False
    holder.refresh()
    status = holder.status()
    assert status.model is not None
    assert status.model.version == "1"
    assert status.mlflow_reachable is False
    assert "MLflow is unreachable" in status.problem
    registry.reachable = True
    holder.refresh()
    assert holder.status().mlflow_reachable is True
    assert holder.status().problem == ""


@pytest.mark.parametrize(
    "broken",
    [OSError("artifact missing"), ConstantModel(0.5, columns=tuple(reversed(FEATURE_NAMES)))],
    ids=["load fails", "columns in another order"],
)
def test_a_version_that_cannot_serve_never_replaces_a_working_one(
    holder: ModelHolder, registry: FakeRegistry, broken: Any
) -> None:
    registry.models = {"1": ConstantModel(0.2), "2": broken}
    registry.champion = "1"
    holder.refresh()
    registry.champion = "2"
    holder.refresh()
    assert holder.model.version == "1"
    assert "could not load M version 2" in holder.status().problem


def test_listeners_hear_each_swap(holder: ModelHolder, registry: FakeRegistry) -> None:
    heard: list[tuple[str | None, str]] = []
    holder.subscribe(lambda old, new: heard.append((old and old.version, new.version)))
    registry.models = {"1": ConstantModel(0.2), "2": ConstantModel(0.3)}
    registry.champion = "1"
    holder.refresh()
    registry.champion = "2"
    holder.refresh()
    assert heard == [(None, "1"), ("1", "2")]


def test_poll_listeners_hear_every_lookup_with_the_alias_it_saw(holder: ModelHolder, registry: FakeRegistry) -> None:
    heard: list[tuple[bool, str | None, str | None]] = []
    holder.subscribe_polls(lambda s: heard.append((s.mlflow_reachable, s.alias_version, s.model and s.model.version)))
    registry.models = {"1": ConstantModel(0.2), "2": OSError("artifact missing")}
    holder.refresh()  # no alias yet
    registry.champion = "1"
    holder.refresh()
    registry.champion = "2"  # cannot load: the alias moved, version 1 keeps answering
    holder.refresh()
    registry.reachable = False  # the alias last seen stays what the last lookup that reached MLflow saw
    holder.refresh()
    assert heard == [(True, None, None), (True, "1", "1"), (True, "2", "1"), (False, "2", "1")]


def test_background_thread_follows_the_alias(holder: ModelHolder, registry: FakeRegistry) -> None:
    registry.models = {"1": ConstantModel(0.2), "2": ConstantModel(0.3)}
    registry.champion = "1"
    holder.start()
    try:
        assert holder.wait_first_check(10)
        assert holder.model.version == "1"
        registry.champion = "2"
        deadline = time.monotonic() + 10
        while holder.model.version != "2" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert holder.model.version == "2"
    finally:
        holder.stop()


def test_mlflow_going_away_is_logged_once_not_at_every_poll(
    holder: ModelHolder, registry: FakeRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    registry.models, registry.champion = {"1": ConstantModel(0.2)}, "1"
    registry.reachable = False
    with caplog.at_level("DEBUG", logger="heartrisk"):
        for _ in range(3):
            holder.refresh()  # still starting: one line
        registry.reachable = True
        holder.refresh()
        registry.reachable = False
        for _ in range(5):
            holder.refresh()
        registry.reachable = True
        holder.refresh()
    lines = [
        (r.levelname, r.getMessage().split(" at ")[0].split(" with ")[0]) for r in caplog.records if r.levelno >= 20
    ]
    assert lines == [
        ("INFO", "waiting for MLflow"),
        ("INFO", "now serving M version 1"),
        ("INFO", "MLflow"),  # ... answers
        ("WARNING", "MLflow unreachable"),
        ("INFO", "MLflow"),
    ]


@pytest.fixture(scope="module")
def exported() -> StoredModel:
    """A real pipeline with its real ONNX export, as training registers it."""
    pipeline = fit_pipeline()
    result = export.export(pipeline, training_rows())
    assert result.graph is not None, result.problem
    return StoredModel(pipeline, result.graph, result.note())


def test_a_version_with_an_export_is_served_by_onnx_runtime_with_scikit_learns_probabilities(
    holder: ModelHolder, registry: FakeRegistry, exported: StoredModel
) -> None:
    registry.models, registry.champion = {"1": exported}, "1"
    holder.refresh()
    model = holder.model
    assert model is not None and model.runtime == export.ONNX_RUNTIME
    assert "matches scikit-learn on 304 reference rows" in model.runtime_note  # 303 rows and the warm-up record
    reference = load_csv(holder.settings.reference_path)[list(FEATURE_NAMES)].to_numpy(float)
    probability, label = model.predict(reference)
    expected = exported.pipeline.predict_proba(reference)[:, 1]
    assert np.abs(probability - expected).max() <= export.TOLERANCE
    assert label.tolist() == (probability >= 0.5).astype(int).tolist()


def test_a_version_whose_export_disagrees_is_refused_and_scikit_learn_keeps_serving(
    holder: ModelHolder, registry: FakeRegistry, exported: StoredModel
) -> None:
    other = fit_pipeline({"kernel": "linear", "C": 0.001})
    wrong = StoredModel(other, exported.graph, "")  # a test double: another model's graph beside this pipeline
    registry.models, registry.champion = {"1": ConstantModel(0.2), "2": wrong}, "1"
    holder.refresh()
    assert holder.model.runtime == export.SKLEARN
    registry.champion = "2"
    holder.refresh()
    holder.refresh()
    assert holder.model.version == "1" and holder.model.runtime == export.SKLEARN
    assert holder.model.predict(as_matrix([VALID_RECORD]))[0].tolist() == [0.2]
    assert "M version 2 refused: its ONNX export differs from its scikit-learn pipeline" in holder.status().problem
    assert (holder.status().refused.version, holder.status().refused.kind) == ("2", "runtimes_disagree")
    assert registry.loads == ["1", "2"]  # refused once, not downloaded again at every poll
    registry.models["3"], registry.champion = exported, "3"
    holder.refresh()
    assert (holder.model.version, holder.model.runtime, holder.status().problem) == ("3", export.ONNX_RUNTIME, "")


def test_without_an_export_scikit_learn_answers(
    holder: ModelHolder, registry: FakeRegistry, exported: StoredModel
) -> None:
    registry.models = {"1": StoredModel(exported.pipeline, None, "no ONNX export: the conversion failed (X)")}
    registry.models["2"], registry.champion = exported, "1"
    holder.refresh()
    sklearn = holder.model
    assert sklearn.runtime == export.SKLEARN
    assert sklearn.runtime_note == "no ONNX export: the conversion failed (X)"
    registry.champion = "2"
    holder.refresh()
    assert holder.model.runtime == export.ONNX_RUNTIME
    rows = training_rows().to_numpy(float)
    assert np.abs(holder.model.predict(rows)[0] - sklearn.predict(rows)[0]).max() <= export.TOLERANCE


def test_an_export_that_cannot_be_checked_is_not_used(
    holder: ModelHolder, registry: FakeRegistry, exported: StoredModel, tmp_path
) -> None:
    unchecked = ModelHolder(dataclasses.replace(holder.settings, reference_path=tmp_path / "missing.csv"), registry)
    registry.models, registry.champion = {"1": exported}, "1"
    unchecked.refresh()
    assert unchecked.model.version == "1" and unchecked.model.runtime == export.SKLEARN
    assert unchecked.model.runtime_note.startswith("ONNX export not checked, so not used")


def test_a_training_prefect_has_queued_is_reported_until_mlflow_shows_it(registry: FakeRegistry) -> None:
    """Between the flow run being queued and its MLflow run starting, the queued run is the answer; a
    failing lookup (Prefect down) is no answer, never a failed refresh."""
    queued: list[Any] = [None]

    def look() -> TrainingInProgress | None:
        if isinstance(queued[0], Exception):
            raise queued[0]
        return queued[0]

    base = get_settings()
    settings = dataclasses.replace(base, mlflow=dataclasses.replace(base.mlflow, model_name="M"))
    holder = ModelHolder(settings, source=registry, queued=look)
    holder.refresh()
    assert holder.status().training is None
    queued[0] = TrainingInProgress("calm-fox", time.time(), None, kind="Prefect flow run", state="queued")
    holder.refresh()
    assert holder.status().training == queued[0]
    registry.running = TrainingInProgress("hyperopt-5-trials", time.time(), None)
    holder.refresh()
    assert holder.status().training == registry.running  # MLflow's run, once there is one
    registry.running, queued[0] = None, ConnectionError("connection refused")
    holder.refresh()
    assert holder.status().training is None
    assert holder.status().mlflow_reachable is True


@pytest.mark.parametrize(
    "untrusted",
    [
        signing.Unsigned("M version 2", "unsigned (no heartrisk.signature tag)"),
        signing.OtherKey("M version 2", "signed by another key (aaaa), not this stack's (bbbb)"),
        signing.BadSignature("M version 2", "its signature does not verify"),
        signing.Changed("M version 2", "model.skops changed after signing"),
    ],
    ids=lambda exc: exc.kind,
)
def test_a_version_this_stack_must_not_load_is_refused_and_the_last_good_one_keeps_answering(
    holder: ModelHolder, registry: FakeRegistry, untrusted: signing.Untrusted
) -> None:
    heard: list[tuple[Refusal | None, Refusal | None]] = []
    holder.subscribe_refusals(lambda old, new: heard.append((old, new)))
    registry.models, registry.champion = {"1": ConstantModel(0.2), "2": untrusted}, "1"
    holder.refresh()
    registry.champion = "2"
    holder.refresh()
    holder.refresh()
    status = holder.status()
    assert holder.model.version == "1" and holder.model.predict(as_matrix([VALID_RECORD]))[0].tolist() == [0.2]
    refusal = Refusal("M", "2", untrusted.kind, untrusted.reason)
    assert status.refused == refusal and status.problem == f"M version 2 refused: {untrusted.reason}"
    assert registry.loads == ["1", "2"]  # not asked for again at every poll
    registry.champion = "1"  # the alias moves back: nothing is refused any more
    holder.refresh()
    assert holder.status().refused is None and holder.status().problem == ""
    registry.champion = "2"  # and to the refused version again: refused without another load
    holder.refresh()
    assert holder.status().refused == refusal and registry.loads == ["1", "2"]
    assert heard == [(None, refusal), (refusal, None), (None, refusal)]


def test_a_missing_verify_key_is_a_problem_of_this_host_tried_again_not_a_refusal(
    holder: ModelHolder, registry: FakeRegistry
) -> None:
    registry.models = {"1": signing.KeyMissing("no model verify key at /keys/model-verify.pem")}
    registry.champion = "1"
    holder.refresh()
    assert holder.model is None and holder.status().refused is None
    assert holder.status().problem == "cannot check M version 1: no model verify key at /keys/model-verify.pem"
    registry.models["1"] = ConstantModel(0.2)  # the key is there now
    holder.refresh()
    assert holder.model.version == "1" and registry.loads == ["1", "1"]
