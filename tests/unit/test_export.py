"""The ONNX export: same probabilities as scikit-learn, and a failed or disagreeing export is reported."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from heartrisk import export
from heartrisk.data import features_and_target
from heartrisk.schema import FEATURE_NAMES
from tests.support.models import fit_pipeline


@pytest.mark.parametrize(
    "params",
    [
        {"kernel": "rbf", "C": 1.0, "gamma": 0.05},
        {"kernel": "sigmoid", "C": 35.9, "gamma": 0.0167},
        {"kernel": "linear", "C": 0.05},
        {"kernel": "poly", "C": 1.0, "gamma": 0.1, "degree": 3},
    ],
    ids=["rbf", "sigmoid", "linear", "poly"],
)
def test_the_export_gives_scikit_learns_probabilities_on_the_whole_data_set(
    params: dict[str, Any], frame: pd.DataFrame
) -> None:
    pipeline = fit_pipeline(params)
    features = features_and_target(frame)[0]
    exported = export.export(pipeline, features)
    assert exported.graph is not None, exported.problem
    assert exported.runtime == export.ONNX_RUNTIME and exported.rows == len(frame)
    onnx = export.OnnxModel(exported.graph)
    answered = onnx.predict_proba(features.to_numpy(float))
    assert answered.shape == (len(frame), 2) and answered.dtype == np.float64
    assert np.abs(answered - pipeline.predict_proba(features)).max() <= export.TOLERANCE
    assert exported.max_difference == pytest.approx(np.abs(answered - pipeline.predict_proba(features)).max())
    assert f"matches scikit-learn on {len(frame)} training rows" in exported.note()


class Unconvertible(ClassifierMixin, BaseEstimator):
    """A classifier skl2onnx has no converter for."""

    def fit(self, x: Any, y: Any) -> Unconvertible:
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = len(FEATURE_NAMES)
        return self

    def predict_proba(self, x: Any) -> np.ndarray:
        return np.tile([0.5, 0.5], (len(x), 1))


def test_an_export_that_fails_is_reported_and_scikit_learn_serves(frame: pd.DataFrame) -> None:
    x, y = features_and_target(frame)
    exported = export.export(Unconvertible().fit(x, y), x)
    assert exported.graph is None and exported.runtime == export.SKLEARN
    assert exported.problem.startswith("the conversion failed")
    assert "Unconvertible" in exported.problem
    assert exported.note().endswith("scikit-learn serves this version")


def test_an_export_that_disagrees_is_not_kept(frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    x = features_and_target(frame)[0]
    other = export.to_onnx(fit_pipeline({"kernel": "linear", "C": 0.001}))  # the graph of another model
    monkeypatch.setattr(export, "to_onnx", lambda pipeline: other)
    exported = export.export(fit_pipeline(), x)
    assert exported.graph is None and exported.runtime == export.SKLEARN
    assert exported.max_difference > export.TOLERANCE
    assert "differ from scikit-learn's by up to" in exported.problem
