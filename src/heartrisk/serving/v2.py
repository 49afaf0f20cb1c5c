"""The Open Inference Protocol (V2, REST), which KServe, Triton and MLServer speak, beside the v1 API.

A tool that talks to those platforms talks to HeartRisk too: ``/v2/health/live`` and ``/ready``, the model
``heartrisk``'s metadata, readiness and ``infer`` (also under ``/versions/{v}``: only the version served
answers; any other is a 404). The input is one tensor of shape [N, 13] in the schema's order or the 13
features as tensors of shape [N] named as in the schema; the output is ``probability`` and ``label``, one value
per record. The records go through :func:`heartrisk.serving.api.predict_records`, the v1 API's own path, so
the limits, the rules, the model and the prediction log are the same; what differs is the wording of the
protocol: every error is ``{"error": "..."}`` (an invalid value names its row and its feature). Tensor data
is JSON (Triton's binary extension is refused with a 400 that says so), and the request's ``id`` comes
back in the answer.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from flask import Blueprint, Response, request

from heartrisk import __version__, export
from heartrisk.names import INFERENCE_MODEL
from heartrisk.schema import FEATURE_NAMES
from heartrisk.serving import health, security
from heartrisk.serving.api import NotServed, predict_records, read_json
from heartrisk.serving.runtime import Scored, runtime

bp = Blueprint("v2", __name__, url_prefix="/v2")

DATATYPE = "FP32"  # what the metadata declares; any numeric type is read, as JSON numbers, and validated alike
NUMERIC = {DATATYPE, "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
INPUTS = [{"name": name, "datatype": DATATYPE, "shape": [-1]} for name in FEATURE_NAMES]
OUTPUTS = [
    {"name": "probability", "datatype": "FP32", "shape": [-1]},
    {"name": "label", "datatype": "INT64", "shape": [-1]},
]
PLATFORMS = {export.ONNX_RUNTIME: "onnxruntime_onnx", export.SKLEARN: "sklearn"}
SHOWN_ERRORS = 10  # invalid values named in one error message; the rest are counted
BINARY = "Inference-Header-Content-Length"  # Triton's binary tensor extension


def _json(body: Any, status: int = 200, retry_after: int | None = None) -> Response:
    response = Response(orjson.dumps(body), status=status, mimetype="application/json")
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


@bp.errorhandler(NotServed)
def _error(exc: NotServed) -> Response:
    """Every refusal of a /v2 view (Flask routes a :class:`NotServed` raised in one here): the protocol's error
    shape, with the v1 API's status (and Retry-After when the log cannot be written)."""
    message = exc.message
    if exc.invalid:
        named = [f"row {index}, {field}: {reason}" for index, fields in exc.invalid for field, reason in fields.items()]
        more = f" | and {len(named) - SHOWN_ERRORS} more" if len(named) > SHOWN_ERRORS else ""
        message = f"{message}: {' | '.join(named[:SHOWN_ERRORS])}{more}"
    return _json({"error": message}, exc.status, exc.retry_after)


def _model_route(suffix: str, **options: Any) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """A view of the model, at ``/models/{name}{suffix}`` and at ``/models/{name}/versions/{version}{suffix}``."""

    def register(view: Callable[..., Response]) -> Callable[..., Response]:
        bp.add_url_rule(f"/models/<name>{suffix}", view_func=view, **options)
        bp.add_url_rule(f"/models/<name>/versions/<version>{suffix}", view_func=view, **options)
        return view

    return register


def _check(name: str, version: str | None) -> None:
    """Refuse a model other than ours (404), a version other than the one served (404; 503 while none is)."""
    if name != INFERENCE_MODEL:
        raise NotServed(404, f"unknown model {name!r}: this server serves {INFERENCE_MODEL!r}")
    if version is None:
        return
    model = runtime().holder.model
    if model is None:
        raise NotServed(503, f"no version of {INFERENCE_MODEL!r} is loaded yet")
    if model.version != version:
        raise NotServed(404, f"version {version!r} of {INFERENCE_MODEL!r} is not served; version {model.version} is")


@bp.get("")
def server_metadata() -> Response:
    return _json({"name": INFERENCE_MODEL, "version": __version__, "extensions": []})


@bp.get("/health/live")
def live() -> Response:
    """The process answers (as ``/healthz``)."""
    return _json({"live": True})


def _readiness(**extra: Any) -> Response:
    """Ready exactly when ``/readyz`` says so, with the same status and the same short reason."""
    ok, status, _ = health.readiness()
    body = {"ready": True} if ok else {"ready": False, "reason": health.public_reason(status)}
    return _json({**extra, **body}, 200 if ok else 503)


@bp.get("/health/ready")
def ready() -> Response:
    return _readiness()


@_model_route("/ready")
def model_ready(name: str, version: str | None = None) -> Response:
    _check(name, version)
    return _readiness(name=name)


@_model_route("")
def model_metadata(name: str, version: str | None = None) -> Response:
    """The model's name, the version served, its runtime, and the tensors it takes and gives."""
    _check(name, version)
    model = runtime().holder.model
    return _json(
        {
            "name": INFERENCE_MODEL,
            "versions": [] if model is None else [model.version],
            "platform": "" if model is None else PLATFORMS[model.runtime],
            "inputs": INPUTS,
            "outputs": OUTPUTS,
        }
    )


@_model_route("/infer", methods=["POST"])
def infer(name: str, version: str | None = None) -> Response:
    _check_transport()
    _check(name, version)
    inference = _inference(read_json())
    return _json(_answer(predict_records(inference.records), inference))


def _check_transport() -> None:
    """JSON only (or no Content-Type, as Triton's client sends), never from another site's page: tensors need no
    Content-Type, so a page elsewhere could post one where the v1 API's JSON would need a CORS preflight."""
    if (reason := security.cross_site_reason(request)) is not None:
        raise NotServed(403, f"cross-site requests are refused ({reason})")
    if BINARY in request.headers:
        raise NotServed(
            400, "binary tensor data (Triton's extension) is not supported: send the tensors as JSON "
            "(tritonclient: set_data_from_numpy(..., binary_data=False))",
        )  # fmt: skip
    if request.mimetype not in ("", "application/json"):
        raise NotServed(415, "send the inference request as JSON (Content-Type: application/json)")


@dataclass(frozen=True)
class Inference:
    """A checked inference request: one record per row, the outputs asked for, the client's id."""

    records: list[dict[str, Any]]
    outputs: list[str]
    id: str | None


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: list[int]
    data: list[Any]  # flat, row-major


def _inference(body: Any) -> Inference:
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise NotServed(400, 'expected an inference request: {"inputs": [{"name", "shape", "datatype", "data"}]}')
    tensors = [_tensor(raw, index) for index, raw in enumerate(body["inputs"])]
    matrix = len(tensors) == 1 and len(tensors[0].shape) == 2
    records = _from_matrix(tensors[0]) if matrix else _from_columns(tensors)
    ident = body.get("id")
    if ident is not None and not isinstance(ident, str):
        raise NotServed(400, "id must be a string")
    return Inference(records, _outputs(body.get("outputs")), ident)


def _tensor(raw: Any, index: int) -> Tensor:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise NotServed(400, f"input {index} must be a tensor object with a name, shape, datatype and data")
    name, shape, datatype, data = raw["name"], raw.get("shape"), raw.get("datatype"), raw.get("data")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise NotServed(400, f"input {name!r}: shape must be a list of non-negative integers, got {shape!r}")
    if datatype not in NUMERIC:
        raise NotServed(400, f"input {name!r}: datatype {datatype!r} is not a number type; send {DATATYPE}")
    if not isinstance(data, list):
        raise NotServed(400, f"input {name!r}: data must be a JSON array (binary tensor data is not supported)")
    flat = _flat(data)
    if len(flat) != math.prod(shape):
        raise NotServed(400, f"input {name!r}: shape {shape} holds {math.prod(shape)} values, data has {len(flat)}")
    return Tensor(name, shape, flat)


def _flat(data: list[Any]) -> list[Any]:
    """Row-major values of data given nested (its natural shape) or flat, as the protocol allows both; without
    recursion, since JSON nests deeper than Python's stack."""
    if not any(isinstance(value, list) for value in data):
        return data
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            flat.append(value)
        else:
            stack.pop()
    return flat


def _from_matrix(tensor: Tensor) -> list[dict[str, Any]]:
    width = len(FEATURE_NAMES)
    if tensor.shape[1] != width:
        raise NotServed(
            400, f"input {tensor.name!r}: shape must be [N, {width}] (the features in this order: "
            f"{', '.join(FEATURE_NAMES)}), got {tensor.shape}",
        )  # fmt: skip
    data = tensor.data
    return [dict(zip(FEATURE_NAMES, data[start : start + width], strict=True)) for start in range(0, len(data), width)]


def _from_columns(tensors: list[Tensor]) -> list[dict[str, Any]]:
    """Records from one tensor per feature, each of shape [N] (or [N, 1])."""
    columns = {tensor.name: tensor for tensor in tensors}
    unknown = [name for name in columns if name not in FEATURE_NAMES]
    if unknown or len(columns) != len(tensors):
        repeated = sorted(name for name, count in Counter(t.name for t in tensors).items() if count > 1)
        what = f"unknown input(s) {unknown}" if unknown else f"input(s) {repeated} given more than once"
        raise NotServed(
            400, f"{what}: send the 13 features as tensors of shape [N] named {', '.join(FEATURE_NAMES)}, "
            f"or one tensor of shape [N, {len(FEATURE_NAMES)}]",
        )  # fmt: skip
    if missing := [name for name in FEATURE_NAMES if name not in columns]:
        raise NotServed(400, f"missing input(s): {', '.join(missing)} (each a tensor of shape [N])")
    wrong = [t.name for t in tensors if len(t.shape) not in (1, 2) or t.shape[1:] not in ([], [1])]
    lengths = {t.shape[0] if t.shape else -1 for t in tensors}
    if wrong or len(lengths) != 1:
        raise NotServed(400, f"each input must have shape [N], the same N for all: {wrong or 'lengths differ'}")
    ordered = [columns[name].data for name in FEATURE_NAMES]
    return [dict(zip(FEATURE_NAMES, row, strict=True)) for row in zip(*ordered, strict=True)]


def _outputs(raw: Any) -> list[str]:
    known = [output["name"] for output in OUTPUTS]
    if raw is None:
        return known
    names = [item.get("name") if isinstance(item, dict) else item for item in raw] if isinstance(raw, list) else [raw]
    if unknown := [name for name in names if name not in known]:
        raise NotServed(400, f"unknown output(s) {unknown}: this model gives {', '.join(known)}")
    return names


def _answer(scored: Scored, inference: Inference) -> dict[str, Any]:
    data = {"probability": scored.probabilities, "label": scored.labels}
    count = len(scored.labels)
    outputs = [
        {**spec, "shape": [count], "data": data[spec["name"]]} for spec in OUTPUTS if spec["name"] in inference.outputs
    ]
    answer: dict[str, Any] = {"model_name": INFERENCE_MODEL, "model_version": scored.model.version, "outputs": outputs}
    if inference.id is not None:
        answer["id"] = inference.id
    return answer
