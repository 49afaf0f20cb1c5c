"""A model version in memory: it must expect the schema's columns in order, and its label follows its probability."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from heartrisk.schema import FEATURE_NAMES, VALID_RECORD, as_matrix
from heartrisk.scoring import LoadedModel
from tests.unit.serving.test_model_holder import ConstantModel


def test_label_is_one_from_probability_one_half() -> None:
    model = LoadedModel.of("M", "1", ConstantModel(0.5))
    probability, label = model.predict(as_matrix([VALID_RECORD, VALID_RECORD]))
    assert probability.tolist() == [0.5, 0.5]
    assert label.tolist() == [1, 1]
    assert model.runtime == "scikit-learn"


def test_a_model_fitted_on_other_columns_is_refused() -> None:
    shuffled = (FEATURE_NAMES[1], FEATURE_NAMES[0], *FEATURE_NAMES[2:])
    with pytest.raises(ValueError, match="model expects columns"):
        LoadedModel.of("M", "1", ConstantModel(0.5, shuffled))


def test_the_probability_is_the_pipelines_own_for_label_one(pipeline: Any, frame: pd.DataFrame) -> None:
    model = LoadedModel.of("M", "1", pipeline)
    rows = frame[list(FEATURE_NAMES)].to_numpy(dtype=float)[:20]
    probability, label = model.predict(rows)
    expected = pipeline.predict_proba(frame[list(FEATURE_NAMES)].iloc[:20])[:, list(pipeline.classes_).index(1)]
    assert np.allclose(probability, expected) and (label == (expected >= 0.5)).all()
