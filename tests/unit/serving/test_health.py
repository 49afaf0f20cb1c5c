"""Probes: /healthz, /readyz with and without a model, and with a champion it refused; the details and
/metrics on the internal port only."""

from __future__ import annotations

import dataclasses

import pytest
from flask.testing import FlaskClient

from heartrisk import signing
from heartrisk.registry import StoredModel
from heartrisk.serving import create_app
from heartrisk.serving.model_holder import ModelHolder
from heartrisk.settings import Settings
from tests.unit.conftest import InternalClient

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
    assert ready.get_json() == {"ready": False, "reason": "no model loaded"}
    assert client.get("/healthz").status_code == 200


def test_readyz_names_the_model_when_one_is_loaded(internal_client: FlaskClient) -> None:
    body = internal_client.get("/readyz").get_json()
    assert body["ready"] is True
    assert body["model_version"] == "7"
    assert body["prediction_log"] == {"backend": "sqlite", "reachable": True, "problem": None}
    assert (body["runtime"], body["runtime_note"]) == ("onnxruntime", "ONNX export matches scikit-learn")


def test_readyz_is_503_while_the_prediction_log_is_unreachable(unlogged_client: FlaskClient) -> None:
    ready = unlogged_client.get("/readyz", base_url=internal_url(unlogged_client))
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
    internal = InternalClient(client.application, client.application.response_class)
    ready = internal.get("/readyz")
    body = ready.get_json()
    assert ready.status_code == 200 and body["model_version"] == "7"
    reason = "unsigned (no heartrisk.signature tag)"
    assert body["refused"] == {"model": "UnitModel", "version": "8", "kind": "unsigned", "reason": reason}
    assert body["problem"] == f"UnitModel version 8 refused: {reason}"
    assert body["note"] == "serving the last good model, version 7, until the problem clears"
    assert client.post("/api/v1/predict", json=record).get_json()["model_version"] == "7"
    assert client.get("/readyz").get_json() == {"ready": True}  # the public port: no versions, no reasons
    metrics = internal.get("/metrics").get_data(as_text=True)
    assert 'heartrisk_model_refused{model="UnitModel",reason="unsigned",version="8"} 1.0' in metrics


def internal_url(client: FlaskClient) -> str:
    return f"http://localhost:{client.application.extensions['heartrisk'].settings.app.internal_port}"


def test_the_public_readyz_says_ready_and_nothing_else(client: FlaskClient, internal_client: FlaskClient) -> None:
    public = client.get("/readyz")
    assert (public.status_code, public.get_json()) == (200, {"ready": True})
    assert internal_client.get("/readyz").get_json()["model_version"] == "7"


def test_the_public_readyz_names_an_unreachable_log_without_its_address_user_or_error(
    unlogged_client: FlaskClient,
) -> None:
    public = unlogged_client.get("/readyz")
    assert (public.status_code, public.get_json()) == (503, {"ready": False, "reason": "prediction log unavailable"})
    detailed = unlogged_client.get("/readyz", base_url=internal_url(unlogged_client)).get_json()
    assert "127.0.0.1" in detailed["prediction_log"]["problem"]  # what the public answer leaves out
    text = public.get_data(as_text=True)
    assert not any(word in text for word in ("127.0.0.1", "postgresql", "app@", "s3cret", "connection"))


def test_the_public_readyz_says_model_refused_when_the_only_version_was_refused(settings: Settings) -> None:
    refusing = ModelHolder(settings, source=UnsignedChampion())
    refusing.refresh()
    public = create_app(settings, refusing).test_client().get("/readyz")
    assert (public.status_code, public.get_json()) == (503, {"ready": False, "reason": "model refused"})


def test_metrics_answer_on_the_internal_port_only(client: FlaskClient, internal_client: FlaskClient) -> None:
    assert client.get("/metrics").status_code == 404
    scraped = internal_client.get("/metrics")
    assert scraped.status_code == 200 and "heartrisk_http_requests_total" in scraped.get_data(as_text=True)


def test_no_header_moves_a_request_to_the_internal_port(settings: Settings, holder: ModelHolder) -> None:
    """Behind the proxy (ProxyFix trusts one hop), neither Host nor X-Forwarded-Port/-Host names the port:
    only the socket the request arrived on does."""
    proxied = dataclasses.replace(settings, app=dataclasses.replace(settings.app, trusted_proxies=1))
    client = create_app(proxied, holder).test_client()
    port = settings.app.internal_port
    headers = {"Host": f"localhost:{port}", "X-Forwarded-Port": str(port), "X-Forwarded-Host": f"localhost:{port}"}
    assert client.get("/readyz", headers=headers).get_json() == {"ready": True}
    assert client.get("/metrics", headers=headers).status_code == 404
