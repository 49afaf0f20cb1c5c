"""The JSON API: one record or a batch in, probabilities out; explanations; the OpenAPI document (openapi.py).

The document is generated from :func:`heartrisk.schema.json_schema`, the same model that validates
the requests, so it cannot drift from what the endpoint accepts. Bodies are read and answers written
with orjson (a 10 000-record batch: 6 ms instead of 16 to read, 1 ms instead of 15 to write); a body
orjson refuses goes to the standard library, which has the last word, so what is accepted and the
messages of a 400 are the standard library's (it also takes NaN and integers beyond 64 bits, which
validation then names).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import orjson
from flask import Blueprint, Response, jsonify, request

from heartrisk.predlog import LogUnavailable
from heartrisk.schema import validate_records
from heartrisk.serving import metrics
from heartrisk.serving.explanations import explained
from heartrisk.serving.messages import NOT_LOGGED, RETRY_AFTER_SECONDS, no_model_advice
from heartrisk.serving.openapi import openapi_document
from heartrisk.serving.runtime import NoModel, Scored, runtime, score

bp = Blueprint("api", __name__, url_prefix="/api/v1")
T = TypeVar("T")


def problem(status: int, message: str, **extra: Any) -> tuple[Response, int]:
    """The one error shape of the API: ``{"error": message, ...details}``."""
    return jsonify({"error": message, **extra}), status


class NotServed(Exception):
    """Why a request for predictions gets none: the HTTP status, what to say, and for invalid records which
    fields of which records (by index), so that each protocol words them in its own shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        invalid: list[tuple[int, dict[str, str]]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.invalid = invalid or []
        self.retry_after = retry_after


def read_json() -> Any:
    """The request's body as JSON: orjson first, the standard library's verdict when orjson refuses."""
    body = request.get_data(cache=False) or b"null"
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise NotServed(400, f"malformed JSON: {str(exc)[:200]}") from None


def validated(records: Sequence[Any]) -> np.ndarray:
    """The records in schema order, or :class:`NotServed` saying which fields of which records are wrong: the
    batch limit and the schema's validation, for every protocol and for explanations."""
    limit = runtime().settings.app.max_batch_rows
    if len(records) > limit:
        raise NotServed(413, f"at most {limit} records per request; got {len(records)}")
    features, invalid = validate_records(records)
    if invalid:
        metrics.refused("validation", len(records))
        raise NotServed(422, f"invalid input in {len(invalid)} of {len(records)} records", invalid=invalid)
    return features


def served(compute: Callable[[], T]) -> T:
    """``compute()``, which scores and logs, with "no model yet" and "the log cannot be written" as the 503s
    this API answers for them."""
    try:
        return compute()
    except NoModel as exc:
        raise NotServed(503, f"no model loaded ({exc}). {no_model_advice(runtime().holder.status())}") from None
    except LogUnavailable:
        raise NotServed(503, NOT_LOGGED, retry_after=RETRY_AFTER_SECONDS) from None


def predict_records(records: Sequence[Any]) -> Scored:
    """The one path from JSON records to logged predictions, for every protocol that serves them (this API and
    the Open Inference Protocol's ``/v2``): the batch limit, the schema's validation, the model, the log."""
    features = validated(records)
    return served(lambda: score(features))


def refusal(exc: NotServed, *, single: bool = False) -> tuple[Response, int]:
    """This API's answer to a request that gets no predictions (``single``: the body was one record)."""
    if exc.invalid and single:
        return problem(exc.status, "invalid input", fields=exc.invalid[0][1])
    rows = [{"index": index, "fields": fields} for index, fields in exc.invalid]
    response, status = problem(exc.status, exc.message, **({"rows": rows} if rows else {}))
    if exc.retry_after is not None:
        response.headers["Retry-After"] = str(exc.retry_after)
    return response, status


def json_body() -> Any:
    """The request's JSON body, or :class:`NotServed` (415 for another content type, 400 for malformed JSON)."""
    if request.mimetype != "application/json":
        raise NotServed(415, "send the records as JSON with Content-Type: application/json")
    return read_json()


@bp.post("/predict")
def predict():
    payload = None
    try:
        payload = json_body()
        if not isinstance(payload, dict | list):
            raise NotServed(422, "expected a JSON object of the 13 features, or a list of such objects")
        scored = predict_records(payload if isinstance(payload, list) else [payload])
    except NotServed as exc:
        return refusal(exc, single=isinstance(payload, dict))
    answers = [
        {"probability": p, "label": label, "model_version": scored.model.version}
        for p, label in zip(scored.probabilities, scored.labels, strict=True)
    ]
    return Response(orjson.dumps(answers[0] if isinstance(payload, dict) else answers), mimetype="application/json")


@bp.post("/explain")
def explain():
    """One record's probability and what each of its 13 values contributed to it (:mod:`heartrisk.explain`)."""
    try:
        payload = json_body()
        if not isinstance(payload, dict):
            raise NotServed(422, "expected one JSON object of the 13 features: an explanation is of one record")
        features = validated([payload])
        _, explanation = served(lambda: explained(features))
    except NotServed as exc:
        return refusal(exc, single=True)
    return Response(orjson.dumps(explanation.as_json()), mimetype="application/json")


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document(runtime().settings.app.max_batch_rows))
