"""The API's OpenAPI 3.1 document, built from the schema's JSON Schema (served at ``/api/v1/openapi.json``)."""

from __future__ import annotations

from typing import Any

from heartrisk import __version__
from heartrisk.schema import FEATURE_NAMES, TARGET, json_schema


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
    points = {"type": "number", "minimum": -1, "maximum": 1}
    explanation = {
        "type": "object",
        "additionalProperties": False,
        "required": ["version", "probability", "baseline", "contributions"],
        "properties": {
            "version": {"type": "string", "description": "Registered model version that answered and explained."},
            "probability": prediction["properties"]["probability"],
            "baseline": {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "description": "The model's average probability over a summary of the study's patients.",
            },
            "contributions": {
                "type": "object",
                "additionalProperties": False,
                "required": list(FEATURE_NAMES),
                "properties": dict.fromkeys(FEATURE_NAMES, points),
                "description": "Exact Shapley value of each value, in probability units (0.12 = 12 points); "
                "they add up to probability - baseline. Associations in one 1988 study, not causes.",
            },
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
            },
            "/api/v1/explain": {
                "post": {
                    "operationId": "explain",
                    "summary": "Score one record (logged like a prediction) and say what each value contributed",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Record"}}},
                    },
                    "responses": {
                        "200": {
                            "description": "The probability, the baseline and the 13 contributions",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Explanation"}}},
                        },
                        "400": err("Malformed JSON"),
                        "413": err("Body over the size limit"),
                        "415": err("Content-Type is not application/json"),
                        "422": err("Not one record, or invalid values: each bad field with the reason"),
                        "503": err("No model loaded yet (train one first), or the prediction log cannot be written"),
                    },
                }
            },
        },
        "components": {
            "schemas": {"Record": record, "Prediction": prediction, "Explanation": explanation, "Error": error}
        },
    }
