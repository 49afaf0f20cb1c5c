"""A registered version's files through the client's own registry, and the MLflow behaviour that needs it.

Checked on MLflow 3.17.2: the second test fails when ``download_artifacts`` resolves ``models:/`` through the
``registry_uri`` it is given, the day ``version_files`` can go.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import mlflow
import mlflow.artifacts
import pytest

from heartrisk._compat.mlflow import version_files


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
