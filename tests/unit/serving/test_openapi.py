"""The OpenAPI document: generated from the schema, every operation with the statuses it answers."""

from __future__ import annotations

from flask.testing import FlaskClient

from heartrisk.schema import FEATURE_NAMES, json_schema


def test_openapi_document_is_generated_from_the_schema(client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    assert doc["components"]["schemas"]["Record"] == json_schema()
    operation = doc["paths"]["/api/v1/predict"]["post"]
    batch = operation["requestBody"]["content"]["application/json"]["schema"]["oneOf"][1]
    assert batch["maxItems"] == 5
    assert {"200", "400", "413", "415", "422", "503"} <= set(operation["responses"])


def test_explain_is_in_the_openapi_document(client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    answer = doc["components"]["schemas"]["Explanation"]
    assert answer["required"] == ["version", "probability", "baseline", "contributions"]
    assert answer["properties"]["contributions"]["required"] == list(FEATURE_NAMES)
    assert set(doc["paths"]["/api/v1/explain"]["post"]["responses"]) == {"200", "400", "413", "415", "422", "503"}
