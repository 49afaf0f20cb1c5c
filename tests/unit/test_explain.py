"""Exact Shapley values of a served probability: they add up, they follow the record, they name the version."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import pytest

from heartrisk import export
from heartrisk.data import features_and_target
from heartrisk.explain import BACKGROUND_ROWS, Background, explain, shapley
from heartrisk.schema import FEATURE_NAMES, validate_record
from heartrisk.scoring import LoadedModel

pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


@pytest.fixture(scope="module")
def study(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    features, diagnosis = features_and_target(frame)
    return features.to_numpy(dtype=float), diagnosis.to_numpy()


@pytest.fixture(scope="module")
def background(study: tuple[np.ndarray, np.ndarray]) -> Background:
    return Background.of(*study)


@pytest.fixture(scope="module")
def served(pipeline: Any, onnx_model: export.OnnxModel) -> LoadedModel:
    return dataclasses.replace(LoadedModel.of("UnitModel", "12", pipeline), onnx=onnx_model)


def test_contributions_add_up_to_probability_minus_baseline(served: LoadedModel, study, background) -> None:
    patients, _ = study
    for record in patients[::30]:
        probability = float(served.predict(record[None])[0][0])
        explained = explain(served, record, background, probability)
        assert list(explained.contributions) == list(FEATURE_NAMES)
        total = sum(explained.contributions.values())
        assert total == pytest.approx(explained.probability - explained.baseline, abs=1e-6)
        assert explained.probability == probability
        assert explained.baseline == pytest.approx(background.weights @ served.predict(background.rows)[0], abs=1e-9)
        assert explained.version == "12" and explained.as_json()["version"] == "12"


def test_one_value_changed_changes_its_contribution(served: LoadedModel, study, background) -> None:
    record = study[0][0]
    older = record.copy()
    older[FEATURE_NAMES.index("age")] += 15
    first, second = (explain(served, r, background, float(served.predict(r[None])[0][0])) for r in (record, older))
    assert first.contributions["age"] != pytest.approx(second.contributions["age"], abs=1e-4)
    assert first.baseline == second.baseline
    moved = sum(second.contributions.values()) - sum(first.contributions.values())
    assert moved == pytest.approx(second.probability - first.probability, abs=1e-6)


def test_the_background_summarises_the_study_in_valid_weighted_records(served: LoadedModel, study, background) -> None:
    patients, _ = study
    assert len(background.rows) == BACKGROUND_ROWS and background.patients == len(patients) == 302
    assert background.weights.sum() == pytest.approx(1) and (background.weights > 0).all()
    for row in background.rows:
        assert validate_record(dict(zip(FEATURE_NAMES, row.tolist(), strict=True)))[1] == {}
    study_mean = served.predict(patients)[0].mean()
    assert background.weights @ served.predict(background.rows)[0] == pytest.approx(study_mean, abs=0.02)


def test_shapley_values_of_games_whose_answer_is_known() -> None:
    sets = np.arange(2 ** len(FEATURE_NAMES))
    members = (sets[:, None] >> np.arange(len(FEATURE_NAMES))) & 1
    own = np.linspace(-0.3, 0.3, len(FEATURE_NAMES))
    assert shapley(members @ own) == pytest.approx(own.tolist(), abs=1e-12)  # additive: each its own part
    both = (members[:, 2] & members[:, 5]).astype(float)  # only together do values 2 and 5 count
    expected = [0.5 if j in (2, 5) else 0.0 for j in range(len(FEATURE_NAMES))]
    assert shapley(both) == pytest.approx(expected, abs=1e-12)
