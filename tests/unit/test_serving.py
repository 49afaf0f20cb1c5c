"""The serving app through Flask's test client, with a real (small) fitted pipeline in the holder."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from heartrisk.config import Settings, get_settings
from heartrisk.data import deduplicate, features_and_target, load_csv
from heartrisk.model import svc_pipeline
from heartrisk.predlog import PredictionLog
from heartrisk.schema import FEATURE_NAMES, FEATURES, TARGET, json_schema
from heartrisk.serving import create_app
from heartrisk.serving.model_holder import LoadedModel, ModelHolder
from heartrisk.serving.security import CONTENT_SECURITY_POLICY
from heartrisk.serving.web import band

HEART = Path(__file__).resolve().parents[2] / "data" / "heart.csv"
# The app gives the pipeline a float array in schema order (see model_holder); pytest resets the app's filter.
pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


@pytest.fixture(scope="module")
def frame():
    return deduplicate(load_csv(HEART))


@pytest.fixture(scope="module")
def pipeline(frame):
    return svc_pipeline({"kernel": "rbf", "C": 1.0, "gamma": 0.05}, calibrated=True, folds=3).fit(
        *features_and_target(frame)
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return dataclasses.replace(
        get_settings(), predictions_db=tmp_path / "predictions.sqlite", max_batch_rows=5, metrics_dir=""
    )


@pytest.fixture
def holder(settings: Settings, pipeline) -> ModelHolder:
    holder = ModelHolder(settings)
    holder.install(LoadedModel.of("UnitModel", "7", pipeline))
    return holder


@pytest.fixture
def app(settings: Settings, holder: ModelHolder) -> Flask:
    return create_app(settings, holder)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def record(frame) -> dict[str, Any]:
    row = frame.iloc[10]
    return {f.name: (float(row[f.name]) if f.dtype == "float" else int(row[f.name])) for f in FEATURES}


def expected(pipeline, records: list[dict[str, Any]]) -> list[float]:
    """What the pipeline says in-process, the way a data scientist would call it."""
    import pandas as pd

    return pipeline.predict_proba(pd.DataFrame(records, columns=list(FEATURE_NAMES)))[:, 1].tolist()


def field_html(page: str, name: str) -> str:
    """The markup of one field's block in the form."""
    match = re.search(rf'<div class="field[^"]*">\s*<label for="{name}".*?</div>', page, re.S)
    assert match, f"no field {name}"
    return match.group(0)


def test_form_has_one_control_per_feature_built_from_the_schema(client: FlaskClient) -> None:
    page = client.get("/").get_data(as_text=True)
    for feature in FEATURES:
        block = field_html(page, feature.name)
        assert f">{feature.label}" in block
        if feature.codes is not None:
            assert f'<select id="{feature.name}" name="{feature.name}"' in block
            for code, text in feature.codes.items():
                assert f'<option value="{code}">{text}</option>' in block
        else:
            assert 'type="number"' in block
            assert f'min="{feature.minimum}"' in block
            assert f'max="{feature.maximum}"' in block
            assert f'step="{feature.step}"' in block
            assert feature.unit in block
    assert "<script" not in page
    assert "style=" not in page
    assert f'<p class="lead" id="meaning">{TARGET.meaning}</p>' in page


def test_original_form_post_shows_percentage_band_version_and_keeps_values(
    client: FlaskClient, pipeline, record
) -> None:
    response = client.post("/", data={k: str(v) for k, v in record.items()})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    probability = expected(pipeline, [record])[0]
    assert f'<output id="probability" class="value">{probability * 100:.1f}&nbsp;%</output>' in page
    assert f'<strong id="band">{band(probability).name}</strong>' in page
    assert '<span id="model-version">7</span>' in page
    assert "not medical advice" in page
    assert f'name="age" value="{record["age"]}"' in page
    assert f'<option value="{record["cp"]}" selected>' in field_html(page, "cp")


def test_invalid_form_values_are_shown_beside_their_field(client: FlaskClient, record) -> None:
    response = client.post("/", data={**{k: str(v) for k, v in record.items()}, "age": "150", "chol": ""})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    age = field_html(page, "age")
    assert 'aria-describedby="age-hint age-error"' in age
    assert 'aria-invalid="true"' in age
    assert re.search(r'<p class="error" id="age-error">.*less than or equal to 100', age)
    assert 'value="150"' in age
    assert "a value is required" in field_html(page, "chol")
    assert 'href="#age"' in page
    assert 'id="sex-error"' not in page
    assert 'id="probability"' not in page  # no result beside errors


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 200),
        ({"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"}, 200),
        ({"Sec-Fetch-Site": "none"}, 200),
        ({"Sec-Fetch-Site": "cross-site"}, 403),
        ({"Sec-Fetch-Site": "same-site"}, 403),
        ({"Origin": "https://evil.example"}, 403),
        ({"Origin": "null"}, 403),
    ],
)
def test_form_post_refuses_cross_site_requests(client: FlaskClient, record, headers, status) -> None:
    response = client.post("/", data={k: str(v) for k, v in record.items()}, headers=headers)
    assert response.status_code == status
    assert response.mimetype == "text/html"


def test_api_single_record_matches_the_pipeline_and_is_logged(
    client: FlaskClient, settings: Settings, pipeline, record
) -> None:
    response = client.post("/api/v1/predict", json=record, headers={"X-Request-ID": "req-42"})
    body = response.get_json()
    assert response.status_code == 200
    assert body["probability"] == pytest.approx(expected(pipeline, [record])[0], abs=1e-12)
    assert body["label"] == int(body["probability"] >= 0.5)
    assert body["model_version"] == "7"
    assert response.headers["X-Request-ID"] == "req-42"
    logged = PredictionLog(settings.predictions_db).read()
    assert len(logged) == 1
    row = logged.iloc[0]
    assert (row["request_id"], row["model_version"]) == ("req-42", "7")
    assert row["probability"] == pytest.approx(body["probability"])
    assert [row[n] for n in FEATURE_NAMES] == [float(record[n]) for n in FEATURE_NAMES]


def test_api_batch_answers_in_order_and_logs_every_row(
    client: FlaskClient, settings: Settings, pipeline, frame
) -> None:
    records = [{n: frame.iloc[i][n].item() for n in FEATURE_NAMES} for i in range(5)]
    response = client.post("/api/v1/predict", json=records)
    assert response.status_code == 200
    got = [item["probability"] for item in response.get_json()]
    assert got == pytest.approx(expected(pipeline, records), abs=1e-12)
    assert PredictionLog(settings.predictions_db).count() == 5
    assert client.post("/api/v1/predict", json=[]).get_json() == []


def test_api_refuses_bad_requests_with_the_right_status(client: FlaskClient, settings: Settings, record) -> None:
    def post(**kwargs):
        return client.post("/api/v1/predict", **kwargs)

    too_many = post(json=[record] * 6)
    assert too_many.status_code == 413
    assert "at most 5" in too_many.get_json()["error"]
    invalid = post(json={**record, "age": 5, "sex": 3, "colour": 1})
    assert invalid.status_code == 422
    assert set(invalid.get_json()["fields"]) == {"age", "sex", "colour"}
    rows = post(json=[record, {**record, "oldpeak": "NaN"}, 7]).get_json()["rows"]
    assert [(r["index"], list(r["fields"])) for r in rows] == [(1, ["oldpeak"]), (2, ["record"])]
    assert post(json="hello").status_code == 422
    assert post(data="age=63", content_type="application/x-www-form-urlencoded").status_code == 415
    assert post(data="{not json", content_type="application/json").status_code == 400
    assert post(data="[" * 100_000, content_type="application/json").status_code == 400
    assert post(data=b"\xff\xfe{", content_type="application/json").status_code == 400
    assert post(data="", content_type="application/json").status_code == 422
    for response in (too_many, invalid):
        assert response.mimetype == "application/json"
    assert PredictionLog(settings.predictions_db).count() == 0


def test_request_bigger_than_the_limit_gets_413(settings: Settings, holder: ModelHolder, record) -> None:
    client = create_app(dataclasses.replace(settings, max_request_bytes=500), holder).test_client()
    response = client.post("/api/v1/predict", json=[record] * 5)
    assert response.status_code == 413
    assert response.get_json()["error"]
    form = client.post("/", data={"age": "6" * 2000})
    assert form.status_code == 413
    assert form.mimetype == "text/html"


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


def test_security_headers_on_pages_and_api(client: FlaskClient, record) -> None:
    for response in (client.get("/"), client.post("/api/v1/predict", json=record), client.get("/nowhere")):
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
        assert "script-src" not in CONTENT_SECURITY_POLICY  # default-src 'none' forbids every script
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"
    css = client.get("/static/style.css")
    assert css.status_code == 200
    assert "no-store" not in css.headers.get("Cache-Control", "")


def test_errors_are_friendly_and_never_show_a_traceback(settings: Settings, record) -> None:
    class Broken:
        classes_ = np.array([0, 1])

        def predict_proba(self, matrix):
            raise RuntimeError("secret internal detail")

    holder = ModelHolder(settings)
    holder.install(LoadedModel("Broken", "1", Broken(), 0.0, 1))
    client = create_app(settings, holder).test_client()
    api = client.post("/api/v1/predict", json=record)
    assert api.status_code == 500
    assert "secret" not in api.get_data(as_text=True)
    assert api.get_json()["error"].startswith("Something went wrong")
    page = client.post("/", data={k: str(v) for k, v in record.items()})
    assert page.status_code == 500
    assert page.mimetype == "text/html"
    assert "secret" not in page.get_data(as_text=True)
    assert "Traceback" not in page.get_data(as_text=True)
    assert client.get("/nowhere").mimetype == "text/html"
    assert client.get("/api/v1/nowhere").get_json()["error"]
    assert client.delete("/").status_code == 405


def test_metrics_count_requests_and_predictions_by_label(client: FlaskClient, record) -> None:
    def sample(text: str, line: str) -> float:
        found = re.search(rf"^{re.escape(line)} (\S+)$", text, re.M)
        return float(found.group(1)) if found else 0.0

    label = client.post("/api/v1/predict", json=record).get_json()["label"]
    before = client.get("/metrics").get_data(as_text=True)
    client.post("/api/v1/predict", json=[record] * 3)
    after = client.get("/metrics").get_data(as_text=True)
    predicted = f'heartrisk_predictions_total{{label="{label}"}}'
    assert sample(after, predicted) - sample(before, predicted) == 3
    requests = 'heartrisk_http_requests_total{endpoint="/api/v1/predict",method="POST",status="200"}'
    assert sample(after, requests) - sample(before, requests) == 1
    assert sample(after, 'heartrisk_model_info{model="UnitModel",version="7"}') == 1
    assert "heartrisk_http_request_duration_seconds_bucket" in after


def test_openapi_document_is_generated_from_the_schema(client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    assert doc["components"]["schemas"]["Record"] == json_schema()
    operation = doc["paths"]["/api/v1/predict"]["post"]
    batch = operation["requestBody"]["content"]["application/json"]["schema"]["oneOf"][1]
    assert batch["maxItems"] == 5
    assert {"200", "400", "413", "415", "422", "503"} <= set(operation["responses"])


@pytest.mark.parametrize(("probability", "name"), [(0.0, "Low"), (0.3, "Moderate"), (0.6, "High"), (1.0, "Very high")])
def test_band_names(probability: float, name: str) -> None:
    assert band(probability).name == name
