"""The JSON API: one record or a batch in, probabilities out; and its OpenAPI document.

The document is generated from :func:`heartrisk.schema.json_schema`, the same model that validates
the requests, so it cannot drift from what the endpoint accepts. Bodies are read and answers written
with orjson (a 10 000-record batch: 6 ms instead of 16 to read, 1 ms instead of 15 to write); a body
orjson refuses goes to the standard library, which has the last word, so what is accepted and the
messages of a 400 are the standard library's (it also takes NaN and integers beyond 64 bits, which
validation then names).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from flask import Blueprint, Response, jsonify, request

from heartrisk import __version__
from heartrisk.predlog import LogUnavailable
from heartrisk.schema import TARGET, json_schema, validate_records
from heartrisk.serving import metrics
from heartrisk.serving.messages import NOT_LOGGED, RETRY_AFTER_SECONDS, no_model_advice
from heartrisk.serving.runtime import NoModel, runtime, score

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def problem(status: int, message: str, **extra: Any) -> tuple[Response, int]:
    """The one error shape of the API: ``{"error": message, ...details}``."""
    return jsonify({"error": message, **extra}), status


def _parse() -> tuple[Any, tuple[Response, int] | None]:
    if request.mimetype != "application/json":
        return None, problem(415, "send the records as JSON with Content-Type: application/json")
    body = request.get_data(cache=False) or b"null"
    try:
        return orjson.loads(body), None
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body), None
    except (ValueError, RecursionError) as exc:
        return None, problem(400, f"malformed JSON: {str(exc)[:200]}")


@bp.post("/predict")
def predict():
    payload, error = _parse()
    if error is not None:
        return error
    limit = runtime().settings.app.max_batch_rows
    if isinstance(payload, list) and len(payload) > limit:
        return problem(413, f"at most {limit} records per request; got {len(payload)}")
    if not isinstance(payload, dict | list):
        return problem(422, "expected a JSON object of the 13 features, or a list of such objects")
    records = payload if isinstance(payload, list) else [payload]
    features, invalid = validate_records(records)
    if invalid:
        metrics.refused("validation", len(records))
        if isinstance(payload, dict):
            return problem(422, "invalid input", fields=invalid[0][1])
        rows = [{"index": index, "fields": fields} for index, fields in invalid]
        return problem(422, f"invalid input in {len(rows)} of {len(records)} records", rows=rows)
    try:
        scored = score(features)
    except NoModel as exc:
        return problem(503, f"no model loaded ({exc}). {no_model_advice(runtime().holder.status())}")
    except LogUnavailable:
        response, status = problem(503, NOT_LOGGED)
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response, status
    answers = [
        {"probability": p, "label": label, "model_version": scored.model.version}
        for p, label in zip(scored.probabilities, scored.labels, strict=True)
    ]
    return Response(orjson.dumps(answers[0] if isinstance(payload, dict) else answers), mimetype="application/json")


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document(runtime().settings.app.max_batch_rows))


def openapi_document(max_batch_rows: int) -> dict[str, Any]:
    """OpenAPI 3.1 description of the API, built from the schema's JSON Schema."""
    record = json_schema()
    prediction = {
        "type": "object",
        "additionalProperties": False,
        "required": ["probability", "label", "model_version"],
        "properties": {
            "probability": {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "description": TARGET.meaning,
            },
            "label": {
                "type": "integer",
                "enum": [0, 1],
                "description": f"1 ({TARGET.label.lower()}) when probability >= 0.5, else 0.",
            },
            "model_version": {"type": "string", "description": "Registered model version that answered."},
        },
    }
    fields = {"type": "object", "additionalProperties": {"type": "string"}, "description": "field -> reason"}
    error = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "fields": fields,
            "rows": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "fields"],
                    "properties": {"index": {"type": "integer", "minimum": 0}, "fields": fields},
                },
            },
        },
    }
    ref = {"$ref": "#/components/schemas/Error"}

    def err(text: str) -> dict[str, Any]:
        return {"description": text, "content": {"application/json": {"schema": ref}}}

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "HeartRisk API",
            "version": __version__,
            "description": f"{TARGET.meaning} Input: 13 clinical features.",
        },
        "paths": {
            "/api/v1/predict": {
                "post": {
                    "operationId": "predict",
                    "summary": "Score one record, or a list of records (answers in the same order)",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        {"$ref": "#/components/schemas/Record"},
                                        {
                                            "type": "array",
                                            "maxItems": max_batch_rows,
                                            "items": {"$ref": "#/components/schemas/Record"},
                                        },
                                    ]
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "One prediction for an object, a list (same order) for a list",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "oneOf": [
                                            {"$ref": "#/components/schemas/Prediction"},
                                            {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/Prediction"},
                                            },
                                        ]
                                    }
                                }
                            },
                        },
                        "400": err("Malformed JSON"),
                        "413": err(f"Body over the size limit, or more than {max_batch_rows} records"),
                        "415": err("Content-Type is not application/json"),
                        "422": err("Invalid records: each bad field with the reason"),
                        "503": err("No model loaded yet (train one first), or the prediction log cannot be written"),
                    },
                }
            }
        },
        "components": {"schemas": {"Record": record, "Prediction": prediction, "Error": error}},
    }
