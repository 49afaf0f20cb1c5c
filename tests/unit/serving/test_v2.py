"""The Open Inference Protocol (V2): both tensor forms give the v1 API's probabilities and log every record; the
metadata comes from the schema; the probes say what /readyz says; every refusal is {"error": ...}, never a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from heartrisk.predlog import open_log
from heartrisk.schema import FEATURE_NAMES
from heartrisk.serving import create_app
from heartrisk.serving.messages import NOT_LOGGED, RETRY_AFTER_SECONDS
from heartrisk.serving.model_holder import ModelHolder
from heartrisk.settings import Settings
from tests.support.predlog import count as count_rows
from tests.support.predlog import logged as logged_rows

pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")
INFER = "/v2/models/heartrisk/infer"


def matrix(records: list[dict[str, Any]], name: str = "input-0") -> dict[str, Any]:
    """One FP32 tensor of shape [N, 13], flat, in the schema's order."""
    data = [record[feature] for record in records for feature in FEATURE_NAMES]
    return {"name": name, "shape": [len(records), len(FEATURE_NAMES)], "datatype": "FP32", "data": data}


def columns(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The 13 features as FP32 tensors of shape [N], named as in the schema."""
    shape = [len(records)]
    return [{"name": f, "shape": shape, "datatype": "FP32", "data": [r[f] for r in records]} for f in FEATURE_NAMES]


@pytest.fixture
def records(frame) -> list[dict[str, Any]]:
    return [{n: frame.iloc[i][n].item() for n in FEATURE_NAMES} for i in range(4)]


def test_both_tensor_forms_answer_what_v1_answers_and_log_every_record(
    client: FlaskClient, settings: Settings, records: list
) -> None:
    v1 = client.post("/api/v1/predict", json=records).get_json()
    nested = {**matrix(records), "data": [[r[f] for f in FEATURE_NAMES] for r in records]}  # natural shape
    for inputs in ([matrix(records)], [nested], columns(records)):
        response = client.post(INFER, json={"id": "req-1", "inputs": inputs}, headers={"X-Request-ID": "mine"})
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert (body["model_name"], body["model_version"], body["id"]) == ("heartrisk", "7", "req-1")
        probability, label = body["outputs"]
        assert (probability["name"], probability["datatype"], probability["shape"]) == ("probability", "FP32", [4])
        assert (label["name"], label["datatype"], label["shape"]) == ("label", "INT64", [4])
        assert probability["data"] == [answer["probability"] for answer in v1]
        assert label["data"] == [answer["label"] for answer in v1]
    rows = logged_rows(open_log(settings.predictions_db))
    assert len(rows) == 4 * 4  # v1's request and each of the three V2 requests: every record, once
    v2_rows = rows[rows["client_request_id"] == "mine"]
    assert len(v2_rows) == 12 and set(v2_rows["model_version"]) == {"7"}
    assert v2_rows[list(FEATURE_NAMES)].values.tolist() == [[float(r[n]) for n in FEATURE_NAMES] for r in records] * 3


def test_outputs_asked_for_are_the_outputs_given(client: FlaskClient, records: list) -> None:
    body = client.post(INFER, json={"inputs": [matrix(records[:1])], "outputs": [{"name": "label"}]}).get_json()
    assert [output["name"] for output in body["outputs"]] == ["label"] and "id" not in body
    empty = client.post(INFER, json={"inputs": [matrix([])]}).get_json()
    assert [output["data"] for output in empty["outputs"]] == [[], []]


def test_metadata_names_the_schemas_inputs_and_the_version_served(client: FlaskClient) -> None:
    meta = client.get("/v2/models/heartrisk").get_json()
    assert (meta["name"], meta["versions"], meta["platform"]) == ("heartrisk", ["7"], "onnxruntime_onnx")
    assert meta["inputs"] == [{"name": n, "datatype": "FP32", "shape": [-1]} for n in FEATURE_NAMES]
    assert meta["outputs"] == [
        {"name": "probability", "datatype": "FP32", "shape": [-1]},
        {"name": "label", "datatype": "INT64", "shape": [-1]},
    ]
    assert client.get("/v2/models/heartrisk/versions/7").get_json() == meta
    server = client.get("/v2").get_json()
    assert server["name"] == "heartrisk" and server["extensions"] == []


def test_probes_say_what_readyz_says(client: FlaskClient, unlogged_client: FlaskClient, settings: Settings) -> None:
    without_model = create_app(settings, ModelHolder(settings)).test_client()
    for app, ready in ((client, True), (unlogged_client, False), (without_model, False)):
        readyz = app.get("/readyz")
        assert readyz.status_code == (200 if ready else 503)
        for path in ("/v2/health/ready", "/v2/models/heartrisk/ready"):
            answer = app.get(path)
            assert (answer.status_code, answer.get_json()["ready"]) == (readyz.status_code, ready)
            assert answer.get_json().get("reason") == readyz.get_json().get("reason")
        assert app.get("/v2/health/live").status_code == 200
    assert unlogged_client.get("/v2/health/ready").get_json()["reason"] == "prediction log unavailable"
    assert without_model.get("/v2/models/heartrisk").get_json()["versions"] == []


@pytest.mark.parametrize("suffix", ["", "/ready", "/infer"])
def test_only_our_model_and_the_version_served_answer(client: FlaskClient, settings: Settings, suffix: str) -> None:
    method = client.post if suffix == "/infer" else client.get
    kwargs = {"json": {"inputs": columns([])}} if suffix == "/infer" else {}
    assert method(f"/v2/models/heartrisk/versions/7{suffix}", **kwargs).status_code == 200
    other = method(f"/v2/models/heartrisk/versions/6{suffix}", **kwargs)
    assert (other.status_code, other.get_json()) == (
        404,
        {"error": "version '6' of 'heartrisk' is not served; version 7 is"},
    )
    unknown = method(f"/v2/models/heart/versions/7{suffix}", **kwargs)
    assert unknown.status_code == 404 and "serves 'heartrisk'" in unknown.get_json()["error"]
    empty = create_app(settings, ModelHolder(settings)).test_client()
    waiting = (empty.post if suffix == "/infer" else empty.get)(f"/v2/models/heartrisk/versions/7{suffix}", **kwargs)
    assert waiting.status_code == 503 and list(waiting.get_json()) == ["error"]


def test_values_are_validated_as_v1_validates_them_and_each_is_named(
    client: FlaskClient, settings: Settings, records: list
) -> None:
    bad = [records[0], {**records[1], "age": 5, "oldpeak": 7.5}, {**records[2], "sex": True}]
    answer = client.post(INFER, json={"inputs": columns(bad)})
    assert answer.status_code == 422
    assert answer.get_json() == {
        "error": "invalid input in 2 of 3 records: "
        "row 1, age: Input should be greater than or equal to 18; allowed: 18 to 100 years | "
        "row 1, oldpeak: Input should be less than or equal to 7; allowed: 0 to 7 mm | "
        "row 2, sex: must be a JSON number, not true/false; allowed: 0 (Female), 1 (Male)"
    }
    v1 = client.post("/api/v1/predict", json=bad).get_json()
    assert [(row["index"], sorted(row["fields"])) for row in v1["rows"]] == [(1, ["age", "oldpeak"]), (2, ["sex"])]
    too_many = client.post(INFER, json={"inputs": [matrix(records * 2)]})  # the unit tests' limit: 5 records
    assert (too_many.status_code, too_many.get_json()) == (413, {"error": "at most 5 records per request; got 8"})
    nan = json.dumps({"inputs": [matrix(records[:1])]}).replace(str(records[0]["oldpeak"]), "NaN", 1)
    assert "row 0, oldpeak" in client.post(INFER, data=nan).get_json()["error"]
    many = client.post(INFER, json={"inputs": [matrix([{**records[0], "age": 1, "sex": 9, "cp": 9}] * 5)]})
    assert many.get_json()["error"].endswith("| and 5 more")  # 15 values named at most 10 at a time
    assert count_rows(open_log(settings.predictions_db)) == 0


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ([], 400, "expected an inference request"),
        ({"inputs": []}, 400, "expected an inference request"),
        ({"inputs": [7]}, 400, "input 0 must be a tensor object"),
        ({"inputs": [{"name": "x", "shape": [1, -13], "datatype": "FP32", "data": []}]}, 400, "non-negative"),
        ({"inputs": [{"name": "x", "shape": [1, 13], "datatype": "BYTES", "data": ["a"] * 13}]}, 400, "not a number"),
        ({"inputs": [{"name": "x", "shape": [1, 13], "datatype": "FP32", "data": [1] * 12}]}, 400, "holds 13 values"),
        ({"inputs": [{"name": "x", "shape": [1, 12], "datatype": "FP32", "data": [1] * 12}]}, 400, "[N, 13]"),
        ({"inputs": [{"name": "x", "shape": [1, 13], "datatype": "FP32"}]}, 400, "data must be a JSON array"),
        ({"inputs": [{"name": "age", "shape": [1], "datatype": "FP32", "data": [50]}]}, 400, "missing input(s): sex"),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [50]}]}, 400, "unknown input(s) ['x']"),
    ],
)
def test_malformed_requests_get_a_4xx_in_the_protocols_shape(
    client: FlaskClient, body: Any, status: int, says: str
) -> None:
    answer = client.post(INFER, json=body)
    assert answer.status_code == status and answer.mimetype == "application/json"
    assert list(answer.get_json()) == ["error"] and says in answer.get_json()["error"]


def test_tensor_sets_that_do_not_make_records_are_refused(client: FlaskClient, records: list) -> None:
    inputs = columns(records[:2])
    repeated = client.post(INFER, json={"inputs": [*inputs, inputs[0]]}).get_json()["error"]
    assert "['age'] given more than once" in repeated
    uneven = [*inputs[:-1], {**inputs[-1], "shape": [1], "data": [2]}]
    assert "the same N for all" in client.post(INFER, json={"inputs": uneven}).get_json()["error"]
    unknown = client.post(INFER, json={"inputs": inputs, "outputs": [{"name": "risk"}]}).get_json()["error"]
    assert unknown == "unknown output(s) ['risk']: this model gives probability, label"
    assert client.post(INFER, json={"inputs": inputs, "id": 3}).get_json() == {"error": "id must be a string"}
    column = [{**tensor, "shape": [2, 1]} for tensor in inputs]  # [N, 1] per feature is [N]
    assert client.post(INFER, json={"inputs": column}).status_code == 200


def test_transport_that_is_not_plain_json_from_this_site_is_refused(client: FlaskClient, records: list) -> None:
    body = json.dumps({"inputs": [matrix(records[:1])]})
    assert client.post(INFER, data=body).status_code == 200  # no Content-Type, as Triton's client sends it
    binary = client.post(INFER, data=body, headers={"Inference-Header-Content-Length": str(len(body))})
    assert binary.status_code == 400 and "binary_data=False" in binary.get_json()["error"]
    assert client.post(INFER, data=body, content_type="text/plain").status_code == 415
    cross = client.post(
        INFER, data=body, headers={"Origin": "https://elsewhere.example", "Sec-Fetch-Site": "cross-site"}
    )
    assert cross.status_code == 403 and cross.get_json()["error"].startswith("cross-site requests are refused")
    assert client.post(INFER, data="{oops").get_json()["error"].startswith("malformed JSON")
    deep = json.dumps({"inputs": [{**matrix(records[:1]), "data": "deep"}]}).replace(
        '"deep"', "[" * 990 + "1" + "]" * 990
    )
    assert "holds 13 values, data has 1" in client.post(INFER, data=deep).get_json()["error"]
    for answer in (client.get(INFER), client.get("/v2/nowhere")):
        assert answer.status_code in (404, 405) and list(answer.get_json()) == ["error"]


def test_a_record_that_cannot_be_logged_is_a_503_that_says_so(unlogged_client: FlaskClient, records: list) -> None:
    answer = unlogged_client.post(INFER, json={"inputs": [matrix(records[:2])]})
    assert (answer.status_code, answer.get_json()) == (503, {"error": NOT_LOGGED})
    assert answer.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
TENSOR = st.fixed_dictionaries(
    {"name": st.sampled_from([*FEATURE_NAMES, "x"]), "shape": st.lists(st.integers(-1, 3), max_size=3)},
    optional={"datatype": st.sampled_from(["FP32", "INT64", "BOOL"]), "data": JSON},
)


@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=JSON | st.fixed_dictionaries({"inputs": st.lists(TENSOR, max_size=14)}, optional={"outputs": JSON}))
def test_no_body_gets_a_server_error(client: FlaskClient, body: Any) -> None:
    answer = client.post(INFER, json=body)
    assert answer.status_code == 200 or (400 <= answer.status_code < 500 and list(answer.get_json()) == ["error"])
