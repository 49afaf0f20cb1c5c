"""The training flow's pieces without Prefect or MLflow: parameters, the fit and its evaluation, when an
identical retrain registers again."""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import mlflow
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sklearn.metrics import roc_auc_score

from heartrisk import data, export, registry
from heartrisk.config import get_settings
from heartrisk.model import SearchResult
from heartrisk.schema import TARGET
from heartrisk.summaries import Promotion
from heartrisk.train import Plan, Split, _plots, fit_and_evaluate, register_and_gate
from tests.support.paths import HEART


def test_the_plan_takes_given_values_and_settings_for_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTRISK_TRIALS", "12")
    monkeypatch.setenv("HEARTRISK_CV_REPEATS", "3")
    settings = get_settings()
    plan = Plan.of(settings, trials=None, folds=3, repeats=None, seed=0, data=None, experiment=None)
    assert (plan.trials, plan.folds, plan.repeats, plan.seed) == (12, 3, 3, 0)  # seed 0 is a seed, not "unset"
    assert plan.search_settings() == {"trials": 12, "folds": 3, "repeats": 3, "seed": 0}
    assert Plan.of(settings, repeats=2).repeats == 2
    assert plan.data_path == settings.data_path and plan.experiment == settings.mlflow.experiment_name
    assert Plan.of(settings, data="x.csv").data_path == Path("x.csv")


@pytest.fixture(scope="module")
def split() -> Split:
    frame = data.deduplicate(data.load_csv(HEART))
    x_train, x_test, y_train, y_test = data.split(frame, test_size=0.2, seed=3)
    return Split(x_train, x_test, y_train, y_test, data.sha256(HEART))


def test_fit_and_evaluate_scores_the_held_out_split_only(split: Split) -> None:
    fitted = fit_and_evaluate.fn({"kernel": "rbf", "C": 1.0, "gamma": 0.05}, split, 3, 0)
    proba = fitted.pipeline.predict_proba(split.x_test)[:, 1]
    assert fitted.metrics["test_roc_auc"] == pytest.approx(roc_auc_score(split.y_test, proba))
    assert fitted.interval[0] < fitted.metrics["test_roc_auc"] < fitted.interval[1]
    assert len(fitted.pipeline.named_steps["model"].calibrated_classifiers_) == 1  # one SVC to serve


def test_fit_and_evaluate_exports_the_pipeline_checked_on_every_training_row(split: Split) -> None:
    fitted = fit_and_evaluate.fn({"kernel": "sigmoid", "C": 35.9, "gamma": 0.0167}, split, 3, 0)
    exported = fitted.exported
    assert exported.runtime == export.ONNX_RUNTIME and exported.rows == len(split.x_train)
    onnx = export.OnnxModel(exported.graph)
    difference = onnx.predict_proba(split.x_train.to_numpy(float)) - fitted.pipeline.predict_proba(split.x_train)
    assert np.abs(difference).max() <= export.TOLERANCE


def test_the_plots_are_the_roc_curve_and_the_confusion_matrix(split: Split) -> None:
    fitted = fit_and_evaluate.fn({"kernel": "linear", "C": 1.0}, split, 3, 0)
    figures = _plots(fitted.pipeline, split.x_test, split.y_test)
    assert set(figures) == {"roc_curve.png", "confusion_matrix.png"}
    assert figures["roc_curve.png"].axes[0].get_title() == "ROC curve, held-out test split"


class Versions:
    """The registry as register-and-gate sees it: a champion with the same fingerprint as this run's model."""

    name = "M"

    def __init__(self, champion: registry.Champion, signed: bool) -> None:
        self.current, self.signed, self.logged = champion, signed, []

    def champion(self) -> registry.Champion:
        return self.current

    def signed_with(self, champion: registry.Champion, key: Any) -> bool:
        return self.signed

    def tag(self, version: str, tags: dict[str, str]) -> None: ...

    def promote_if_better(self, version: str, score: float, target: str, key: Any) -> Promotion:
        return Promotion(True, version, score, self.current.version, self.current.score, "tie")


@pytest.mark.parametrize("signed", [True, False], ids=["signed with this key", "not signed with this key"])
def test_an_identical_retrain_registers_again_only_when_the_champion_is_not_signed_with_this_key(
    monkeypatch: pytest.MonkeyPatch, split: Split, signed: bool
) -> None:
    """A new key, or a champion from before signing: the app refuses it, so the same model is registered, signed."""
    settings, plan = get_settings(), Plan.of(get_settings(), folds=3)
    result = SearchResult({"kernel": "rbf", "C": 1.0}, 0.9, 0.01)
    mark = registry.fingerprint(data_sha256=split.data_sha256, params=result.best_params, folds=3, target=TARGET.name)
    versions = Versions(registry.Champion("4", 0.9, TARGET.name, mark, None), signed)
    monkeypatch.setattr(registry.Registry, "of", classmethod(lambda cls, mlflow: versions))
    monkeypatch.setattr(registry, "log_model", lambda pipeline, **options: versions.logged.append(options) or "5")
    monkeypatch.setattr(mlflow, "start_run", lambda run_id: contextlib.nullcontext())
    fitted = SimpleNamespace(pipeline=None, exported=None)
    decision, why = register_and_gate.fn(settings.mlflow, "run", fitted, split, result, plan)
    assert (decision.new_version, bool(why), len(versions.logged)) == (("4", True, 0) if signed else ("5", False, 1))
    if not signed:
        assert isinstance(versions.logged[0]["signing_key"], Ed25519PrivateKey)
