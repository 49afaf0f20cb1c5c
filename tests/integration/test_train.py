"""Training against a real MLflow server: champion, promotion gate, model loadable in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.metrics import accuracy_score, brier_score_loss, f1_score, roc_auc_score

from heartrisk import export, signing
from heartrisk.data import deduplicate, features_and_target, load_csv, split
from heartrisk.registry import RUNTIME_TAG, Champion, Registry
from tests.support.commands import heartrisk, heartrisk_here, last_json
from tests.support.models import CHAMPION_MODEL as MODEL_NAME
from tests.support.models import registry
from tests.support.paths import HEART

pytestmark = pytest.mark.integration


def test_champion_alias_and_logged_run(champion: dict, mlflow_env: dict) -> None:
    client = MlflowClient(mlflow_env["MLFLOW_TRACKING_URI"])
    current = Registry(mlflow_env["MLFLOW_TRACKING_URI"], MODEL_NAME, "champion").champion()
    assert current is not None
    assert champion["champion_version"] == champion["model_version"]  # promoted when it was trained
    # the alias holds it, or a later version the gate promoted (the drift test retrains this model)
    assert int(current.version) >= int(champion["model_version"])
    assert Champion.of(client.get_model_version(MODEL_NAME, champion["model_version"])).target == "disease"
    run = client.get_run(champion["run_id"])
    assert run.data.params["data_sha256"] == champion["data_sha256"]
    artifacts = {a.path for a in client.list_artifacts(champion["run_id"])}
    assert {"roc_curve.png", "confusion_matrix.png", "model_card.md", "promotion_decision.json"} <= artifacts
    children = client.search_runs(
        [run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{champion['run_id']}'"
    )
    assert len(children) == champion["trials"]
    assert all("cv_roc_auc" in child.data.metrics for child in children)
    assert all(not client.list_artifacts(child.info.run_id) for child in children)  # no model per trial
    assert max(child.data.metrics["cv_roc_auc"] for child in children) == pytest.approx(champion["cv_roc_auc"])


def test_the_registered_version_holds_the_checked_onnx_export(champion: dict, mlflow_env: dict) -> None:
    import mlflow

    assert champion["serving_runtime"] == export.ONNX_RUNTIME
    assert champion["onnx_export"].startswith("ONNX export matches scikit-learn on 241 training rows")
    stored = registry(mlflow_env["MLFLOW_TRACKING_URI"], MODEL_NAME).load(champion["model_version"])  # verified
    rows = features_and_target(load_csv(HEART))[0].to_numpy(float)
    assert export.max_difference(export.OnnxModel(stored.graph), stored.pipeline, rows) <= export.TOLERANCE
    version = MlflowClient().get_model_version(MODEL_NAME, champion["model_version"])
    assert version.tags[RUNTIME_TAG] == export.ONNX_RUNTIME
    signed = json.loads(version.tags[signing.TAG])["files"]  # the flow signed both served files
    assert sorted(signed) == ["extra_files/model.onnx", "model.skops"]
    card = mlflow.artifacts.load_text(f"runs:/{champion['run_id']}/model_card.md")
    assert f"**Served by**: onnxruntime ({champion['onnx_export']})" in card


def test_logged_test_metrics_are_the_registered_models_on_the_held_out_split(champion: dict, mlflow_env: dict) -> None:
    """Recomputed here from the registered model and the same seeded split (seed 7, 20 %)."""
    _, x_test, _, y_test = split(deduplicate(load_csv(HEART)), test_size=0.2, seed=champion["seed"])
    pipeline = registry(mlflow_env["MLFLOW_TRACKING_URI"], MODEL_NAME).load_sklearn(champion["model_version"])
    proba = pipeline.predict_proba(x_test)[:, 1]
    expected = {
        "test_roc_auc": roc_auc_score(y_test, proba),
        "test_accuracy": accuracy_score(y_test, proba >= 0.5),
        "test_f1": f1_score(y_test, proba >= 0.5),
        "test_brier": brier_score_loss(y_test, proba),
    }
    logged = MlflowClient(mlflow_env["MLFLOW_TRACKING_URI"]).get_run(champion["run_id"]).data.metrics
    for key, value in expected.items():
        assert champion[key] == pytest.approx(value, abs=1e-9), key
        assert logged[key] == pytest.approx(value, abs=1e-9), key
    low, high = champion["test_roc_auc_ci"]
    assert low < expected["test_roc_auc"] < high


def test_weaker_run_does_not_take_the_alias(champion: dict, mlflow_env: dict, prefect_stack, tmp_path: Path) -> None:
    """A deliberately weak model (labels shuffled, 1 trial) is registered but not promoted."""
    models = Registry(mlflow_env["MLFLOW_TRACKING_URI"], MODEL_NAME, "champion")
    before = models.champion()
    frame = pd.read_csv(HEART)
    frame["output"] = frame["output"].sample(frac=1.0, random_state=0).to_numpy()
    weak = tmp_path / "shuffled.csv"
    frame.to_csv(weak, index=False)

    result = heartrisk_here("train", "--trials", "1", "--folds", "3", "--data", str(weak), env=prefect_stack.env)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = last_json(result)
    assert summary["promoted"] is False
    assert summary["registered"] is True
    assert summary["cv_roc_auc"] < before.score
    assert models.champion().version == before.version
    assert int(summary["model_version"]) > int(before.version)  # registered all the same
    assert "NOT promoted" in result.stdout


def test_an_identical_retrain_registers_nothing_new(prefect_stack) -> None:
    """Same data, seed and parameters as the champion: tracked, but the registry keeps one version."""
    env = {**prefect_stack.env, "HEARTRISK_MODEL_NAME": "HeartRiskIdenticalRetrain"}
    args = ("train", "--trials", "2", "--folds", "3", "--seed", "3", "--experiment", "identical-retrain")
    first, second = last_json(heartrisk_here(*args, env=env)), last_json(heartrisk_here(*args, env=env))
    assert (first["registered"], first["promoted"], first["model_version"]) == (True, True, "1")
    assert (second["registered"], second["promoted"]) == (False, False)
    assert second["model_version"] == second["champion_version"] == "1"
    assert "same data, parameters and target as champion v1" in second["registration_reason"]
    assert second["run_id"] != first["run_id"]  # the run is tracked all the same
    client = MlflowClient(prefect_stack.env["MLFLOW_TRACKING_URI"])
    versions = client.search_model_versions("name = 'HeartRiskIdenticalRetrain'")
    assert [v.version for v in versions] == ["1"]


def test_champion_loads_in_a_fresh_process(champion: dict, mlflow_env: dict) -> None:
    code = f"""
import mlflow, numpy as np, pandas as pd
model = mlflow.pyfunc.load_model("models:/{MODEL_NAME}@champion")
frame = pd.read_csv({str(HEART)!r}).drop(columns=["output"])
proba = np.asarray(model.predict(frame))
assert proba.shape == (len(frame), 2), proba.shape
assert ((proba >= 0) & (proba <= 1)).all()
assert np.allclose(proba.sum(axis=1), 1)
print(len(frame))
"""
    import os

    # A person's own process, outside the stack, who chooses MLflow's loader (which trusts the types the model
    # file lists): every process of ours refuses it (MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false).
    env = {**os.environ, **mlflow_env, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "303"


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [("age", "400", "column 'age', row 1"), ("chol", "lots", "column 'chol', row 1")],
)
def test_bad_csv_fails_with_column_and_row(
    tmp_path: Path, mlflow_env: dict, column: str, value: str, expected: str
) -> None:
    frame = pd.read_csv(HEART, dtype=str)
    frame.loc[0, column] = value
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    result = heartrisk("train", "--trials", "1", "--data", str(bad), env=mlflow_env)
    assert result.returncode == 2
    assert expected in result.stderr


def test_missing_column_fails(tmp_path: Path, mlflow_env: dict) -> None:
    bad = tmp_path / "bad.csv"
    pd.read_csv(HEART).drop(columns=["thall"]).to_csv(bad, index=False)
    result = heartrisk("train", "--data", str(bad), env=mlflow_env)
    assert result.returncode == 2
    assert "missing column(s) thall" in result.stderr
