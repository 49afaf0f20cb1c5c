"""Probes: /healthz, /readyz with and without a model."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

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
