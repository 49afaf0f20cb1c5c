"""Probes: /healthz, /readyz with and without a model, and with a champion it refused."""

from __future__ import annotations

import dataclasses

import pytest
from flask.testing import FlaskClient

from heartrisk import signing
from heartrisk.registry import StoredModel
from heartrisk.serving import create_app
from heartrisk.serving.model_holder import ModelHolder
from heartrisk.settings import Settings

pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


def test_without_a_model_the_form_explains_and_the_api_answers_503(settings: Settings, record) -> None:
    client = create_app(settings, ModelHolder(settings)).test_client()
    page = client.get("/")
    assert page.status_code == 200
    assert "heartrisk train" in page.get_data(as_text=True)
    assert "train-heart-attack-model" in page.get_data(as_text=True)
    post = client.post("/", data={k: str(v) for k, v in record.items()})
    assert post.status_code == 503
    assert "heartrisk train" in post.get_data(as_text=True)
    api = client.post("/api/v1/predict", json=record)
    assert api.status_code == 503
    assert "no model" in api.get_json()["error"]
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["ready"] is False
    assert client.get("/healthz").status_code == 200


def test_readyz_names_the_model_when_one_is_loaded(client: FlaskClient) -> None:
    body = client.get("/readyz").get_json()
    assert body["ready"] is True
    assert body["model_version"] == "7"
    assert body["prediction_log"] == {"backend": "sqlite", "reachable": True, "problem": None}
    assert (body["runtime"], body["runtime_note"]) == ("onnxruntime", "ONNX export matches scikit-learn")


def test_readyz_is_503_while_the_prediction_log_is_unreachable(unlogged_client: FlaskClient) -> None:
    ready = unlogged_client.get("/readyz")
    assert ready.status_code == 503
    body = ready.get_json()
    assert body["ready"] is False and body["model_version"] == "7"  # the model is fine; requests would get 503
    assert body["prediction_log"]["backend"] == "postgresql" and body["prediction_log"]["reachable"] is False
    assert "unreachable" in body["prediction_log"]["problem"] and "s3cret" not in body["prediction_log"]["problem"]


class UnsignedChampion:
    """A registry whose champion, version 8, is unsigned: what an intruder with an MLflow login registers."""

    def champion_version(self) -> str:
        return "8"

    def load(self, version: str) -> StoredModel:
        raise signing.Unsigned(f"UnitModel version {version}", "unsigned (no heartrisk.signature tag)")

    def training(self) -> None:
        return None


def test_readyz_and_the_metrics_name_a_refused_champion_while_the_last_good_model_answers(
    settings: Settings, holder: ModelHolder, record
) -> None:
    """The unit holder serves version 7 of UnitModel; the alias moves to an unsigned version 8."""
    refusing = ModelHolder(
        dataclasses.replace(settings, mlflow=dataclasses.replace(settings.mlflow, model_name="UnitModel")),
        source=UnsignedChampion(),
    )
    refusing.install(holder.model)
    client = create_app(settings, refusing).test_client()
    refusing.refresh()
    ready = client.get("/readyz")
    body = ready.get_json()
    assert ready.status_code == 200 and body["model_version"] == "7"
    reason = "unsigned (no heartrisk.signature tag)"
    assert body["refused"] == {"model": "UnitModel", "version": "8", "kind": "unsigned", "reason": reason}
    assert body["problem"] == f"UnitModel version 8 refused: {reason}"
    assert body["note"] == "serving the last good model, version 7, until the problem clears"
    assert client.post("/api/v1/predict", json=record).get_json()["model_version"] == "7"
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'heartrisk_model_refused{model="UnitModel",reason="unsigned",version="8"} 1.0' in metrics
