"""Training against a real MLflow server: champion, promotion gate, model loadable in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from heartrisk import registry
from tests.conftest import HEART, MODEL_NAME
from tests.servers import BIN

pytestmark = pytest.mark.integration


def _cli(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [str(BIN / "heartrisk"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env, "PREFECT_HOME": str(tmp_path / "prefect")},
        timeout=600,
        check=False,
    )


def test_champion_alias_and_logged_run(champion: dict) -> None:
    client = MlflowClient()
    current = registry.champion(client, MODEL_NAME, "champion")
    assert current is not None
    run = client.get_run(champion["run_id"])
    for key in ("cv_roc_auc", "test_roc_auc", "test_accuracy", "test_f1", "test_brier"):
        assert 0.0 <= run.data.metrics[key] <= 1.0
    assert run.data.params["data_sha256"] == champion["data_sha256"]
    artifacts = {a.path for a in client.list_artifacts(champion["run_id"])}
    assert {"roc_curve.png", "confusion_matrix.png", "model_card.md", "promotion_decision.json"} <= artifacts
    children = client.search_runs(
        [run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{champion['run_id']}'"
    )
    assert len(children) == champion["trials"]
    assert all("cv_roc_auc" in child.data.metrics for child in children)
    assert all(not client.list_artifacts(child.info.run_id) for child in children)  # no model per trial


def test_weaker_run_does_not_take_the_alias(champion: dict, mlflow_env: dict, tmp_path: Path) -> None:
    """A deliberately weak model (labels shuffled, 1 trial) is registered but not promoted."""
    client = MlflowClient()
    before = registry.champion(client, MODEL_NAME, "champion")
    frame = pd.read_csv(HEART)
    frame["output"] = frame["output"].sample(frac=1.0, random_state=0).to_numpy()
    weak = tmp_path / "shuffled.csv"
    frame.to_csv(weak, index=False)

    result = _cli(["train", "--trials", "1", "--folds", "3", "--data", str(weak)], mlflow_env, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"run_id", "cv_roc_auc", "test_roc_auc", "model_version", "promoted"} <= set(summary)
    assert summary["promoted"] is False
    assert summary["cv_roc_auc"] < float(before.tags["cv_roc_auc"])
    after = registry.champion(client, MODEL_NAME, "champion")
    assert after.version == before.version
    assert int(summary["model_version"]) > int(before.version)  # registered all the same
    assert "NOT promoted" in result.stdout


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

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **mlflow_env}, timeout=300
    )
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
    result = _cli(["train", "--trials", "1", "--data", str(bad)], mlflow_env, tmp_path)
    assert result.returncode == 2
    assert expected in result.stderr


def test_missing_column_fails(tmp_path: Path, mlflow_env: dict) -> None:
    bad = tmp_path / "bad.csv"
    pd.read_csv(HEART).drop(columns=["thall"]).to_csv(bad, index=False)
    result = _cli(["train", "--data", str(bad)], mlflow_env, tmp_path)
    assert result.returncode == 2
    assert "missing column(s) thall" in result.stderr
