"""The JSON API: one record or a batch, the right status for every bad request, explanations."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from flask.testing import FlaskClient

from heartrisk import export
from heartrisk.predlog import open_log
from heartrisk.schema import FEATURE_NAMES
from heartrisk.serving import create_app
from heartrisk.serving.messages import NOT_LOGGED, RETRY_AFTER_SECONDS
from heartrisk.serving.model_holder import ModelHolder
from heartrisk.settings import Settings
from tests.support.models import in_process as expected
from tests.support.predlog import count as count_rows
from tests.support.predlog import logged as logged_rows

pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


def test_api_single_record_matches_the_pipeline_and_is_logged(
    client: FlaskClient, settings: Settings, pipeline, record
) -> None:
    response = client.post("/api/v1/predict", json=record, headers={"X-Request-ID": "req-42"})
    body = response.get_json()
    assert response.status_code == 200
    assert body["probability"] == pytest.approx(expected(pipeline, [record])[0], abs=export.TOLERANCE)
    assert body["label"] == int(body["probability"] >= 0.5)
    assert body["model_version"] == "7"
    key = response.headers["X-Request-ID"]  # the server's key of the row, not the client's id
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    logged = logged_rows(open_log(settings.predictions_db))
    assert len(logged) == 1
    row = logged.iloc[0]
    assert (row["request_id"], row["client_request_id"], row["model_version"]) == (key, "req-42", "7")
    assert row["probability"] == pytest.approx(body["probability"])
    assert [row[n] for n in FEATURE_NAMES] == [float(record[n]) for n in FEATURE_NAMES]


def test_api_batch_answers_in_order_and_logs_every_row(
    client: FlaskClient, settings: Settings, pipeline, frame
) -> None:
    records = [{n: frame.iloc[i][n].item() for n in FEATURE_NAMES} for i in range(5)]
    response = client.post("/api/v1/predict", json=records)
    assert response.status_code == 200
    got = [item["probability"] for item in response.get_json()]
    assert got == pytest.approx(expected(pipeline, records), abs=export.TOLERANCE)
    assert count_rows(open_log(settings.predictions_db)) == 5
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
    assert count_rows(open_log(settings.predictions_db)) == 0


def test_what_orjson_refuses_is_read_as_the_standard_library_reads_it(client: FlaskClient, record) -> None:
    """NaN literals and integers beyond 64 bits are JSON Python reads: validation names the field (422)."""
    body = json.dumps({**record, "oldpeak": float("nan"), "chol": 10**30})
    response = client.post("/api/v1/predict", data=body, content_type="application/json")
    assert response.status_code == 422
    assert set(response.get_json()["fields"]) == {"oldpeak", "chol"}
    utf16 = client.post("/api/v1/predict", data=json.dumps(record).encode("utf-16"), content_type="application/json")
    assert utf16.status_code == 200 and utf16.get_json()["model_version"] == "7"


def test_request_bigger_than_the_limit_gets_413(settings: Settings, holder: ModelHolder, record) -> None:
    limited = dataclasses.replace(settings, app=dataclasses.replace(settings.app, max_request_bytes=500))
    client = create_app(limited, holder).test_client()
    response = client.post("/api/v1/predict", json=[record] * 5)
    assert response.status_code == 413
    assert response.get_json()["error"]
    form = client.post("/", data={"age": "6" * 2000})
    assert form.status_code == 413
    assert form.mimetype == "text/html"


def test_a_prediction_that_cannot_be_logged_is_a_503_that_says_so(unlogged_client: FlaskClient, record) -> None:
    for payload in (record, [record, record]):
        response = unlogged_client.post("/api/v1/predict", json=payload)
        assert response.status_code == 503
        assert response.get_json() == {"error": NOT_LOGGED}  # the cause, not the database's address
        assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)


def test_explain_answers_the_contributions_of_the_version_that_answered_and_logs_it(
    client: FlaskClient, settings: Settings, record
) -> None:
    predicted = client.post("/api/v1/predict", json=record).get_json()
    response = client.post("/api/v1/explain", json=record)
    body = response.get_json()
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert list(body) == ["version", "probability", "baseline", "contributions"]
    assert list(body["contributions"]) == list(FEATURE_NAMES)
    assert body["version"] == predicted["model_version"] == "7"
    assert body["probability"] == predicted["probability"]
    assert sum(body["contributions"].values()) == pytest.approx(body["probability"] - body["baseline"], abs=1e-6)
    assert count_rows(open_log(settings.predictions_db)) == 2  # an explained answer is a served answer


def test_explain_refuses_what_predict_refuses_and_a_batch(client: FlaskClient, settings: Settings, record) -> None:
    invalid = client.post("/api/v1/explain", json={**record, "chol": 1500})
    assert invalid.status_code == 422 and list(invalid.get_json()["fields"]) == ["chol"]
    assert "less than or equal to 700" in invalid.get_json()["fields"]["chol"]
    batch = client.post("/api/v1/explain", json=[record, record])
    assert batch.status_code == 422 and "one record" in batch.get_json()["error"]
    assert client.post("/api/v1/explain", data="age=63", content_type="text/plain").status_code == 415
    assert client.post("/api/v1/explain", data="{", content_type="application/json").status_code == 400
    assert count_rows(open_log(settings.predictions_db)) == 0
