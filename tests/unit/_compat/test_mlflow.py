"""A registered version's files through the client's own registry, and the MLflow behaviour that needs it;
a model logged with the digests of its files as uploaded; deleted runs erased one by one, and why
``mlflow gc`` is not used for it.

Checked on MLflow 3.17.2: the second test fails when ``download_artifacts`` resolves ``models:/`` through the
``registry_uri`` it is given, the day ``version_files`` can go; the digest test when ``Model.log`` changes
the files it saved before uploading them, or stops saving through the flavor it is given; the gc test
when ``mlflow gc`` changes how it picks what it erases, the day to look at ``erase_runs`` again.
"""

from __future__ import annotations

import hashlib
import inspect
from pathlib import Path
from typing import Any, ClassVar

import mlflow
import mlflow.artifacts
import mlflow.cli as mlflow_cli
import numpy as np
import pytest
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LogisticRegression

from heartrisk._compat.mlflow import erase_runs, log_sklearn, version_files


class FakeClient:
    """What MLflow asks of a client for a version's files; notes the registry each client was made for."""

    made_for: ClassVar[list[str | None]] = []
    source: ClassVar[str] = ""

    def __init__(self, tracking_uri: str | None = None, registry_uri: str | None = None) -> None:
        FakeClient.made_for.append(registry_uri)
        self.asked: list[tuple[str, str]] = []

    def get_model_version_download_uri(self, name: str, version: str) -> str:
        self.asked.append((name, version))
        return self.source


def a_logged_model(tmp_path: Path) -> str:
    folder = tmp_path / "artifacts" / "model"
    folder.mkdir(parents=True)
    (folder / "MLmodel").write_text("flavors: {}\n")
    return folder.as_uri()


def test_a_versions_files_come_from_its_download_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FakeClient, "source", a_logged_model(tmp_path))
    client: Any = FakeClient()
    local = version_files(client, "HeartRisk", "3", str(tmp_path / "here"), "http://tracking.invalid")
    assert client.asked == [("HeartRisk", "3")]
    assert (local / "MLmodel").read_text() == "flavors: {}\n"


def test_a_models_uri_is_still_resolved_through_the_global_registry_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # MLflow's default registry: a SQLite file in the working folder
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setattr(FakeClient, "made_for", [])
    monkeypatch.setattr(FakeClient, "source", a_logged_model(tmp_path))
    monkeypatch.setattr(mlflow, "MlflowClient", FakeClient)
    ours = "http://registry.invalid"
    mlflow.artifacts.download_artifacts(
        "models:/HeartRisk/3", dst_path=str(tmp_path / "here"), tracking_uri=ours, registry_uri=ours
    )
    assert ours not in FakeClient.made_for, (
        "MLflow now resolves models:/ through the registry_uri it is given (it did not on 3.17.2): "
        "heartrisk._compat.mlflow.version_files can go"
    )
    assert FakeClient.made_for == [mlflow.get_registry_uri()]


def test_erase_runs_removes_the_given_runs_records_and_nothing_else(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    monitoring = client.create_experiment("monitoring", artifact_location=(tmp_path / "a").as_uri())
    gone, kept = (client.create_run(monitoring).info.run_id for _ in range(2))
    client.log_metric(gone, "drift_share", 0.5)
    training = client.create_experiment("training", artifact_location=(tmp_path / "b").as_uri())
    for run_id in (gone, kept):
        client.delete_run(run_id)
    client.delete_experiment(training)  # deleted, and not ours to erase
    erase_runs(uri, [gone])
    with pytest.raises(mlflow.exceptions.MlflowException, match="not found"):
        client.get_run(gone)
    assert client.get_run(kept).info.lifecycle_stage == "deleted"
    assert client.get_experiment(training).lifecycle_stage == "deleted"


def test_mlflow_gc_given_run_ids_alone_still_erases_every_deleted_experiment() -> None:
    """Why erase_runs exists: the day gc limits itself to the run ids it is given, use ``mlflow gc`` instead."""
    source = inspect.getsource(mlflow_cli._gc_tracking_resources)
    assert "view_type=ViewType.DELETED_ONLY" in source and "if experiment_ids:" in source, (
        "mlflow gc changed how it picks the experiments it erases (on 3.17.2, no --experiment-ids meant every "
        "deleted experiment): check whether `mlflow gc --run-ids` now erases only those runs, and if so let "
        "heartrisk._compat.mlflow.erase_runs go"
    )
    assert hasattr(SqlAlchemyStore, "_hard_delete_run")


def test_the_digests_taken_at_save_are_those_of_the_uploaded_files_and_the_model_is_mlflow_sklearns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through a real (SQLite) tracking store; the files come back through :func:`version_files`, one by one."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    graph = tmp_path / "model.onnx"
    graph.write_bytes(b"an ONNX graph")
    rows = np.random.default_rng(0).normal(size=(20, 3))
    try:
        with mlflow.start_run():
            info, files = log_sklearn(
                LogisticRegression().fit(rows, rows[:, 0] > 0),
                paths=["model.skops", "extra_files/model.onnx"],
                name="model",
                registered_model_name="T",
                extra_files=[str(graph)],
                pip_requirements=[],
            )
    finally:
        mlflow.set_tracking_uri(previous)
    client = MlflowClient(uri)
    version = str(info.registered_model_version)
    local = version_files(client, "T", version, str(tmp_path / "here"), uri, sorted(files))
    assert {path: hashlib.sha256((local / path).read_bytes()).hexdigest() for path in files} == files
    assert sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()) == sorted(files)
    flavor = mlflow.models.Model.load(str(version_files(client, "T", version, str(tmp_path / "all"), uri))).flavors
    assert flavor["sklearn"]["serialization_format"] == "skops" and client.get_logged_model(info.model_id).source_run_id
