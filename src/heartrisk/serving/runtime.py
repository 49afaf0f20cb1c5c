"""What every request needs: settings, the model holder, the prediction log; and the one scoring path.

The form and the API both call :func:`score`, so they cannot disagree about the probability, and
every served prediction is logged (one row per record, in the request, in one transaction) before
the answer leaves: when the log cannot be written, :class:`~heartrisk.predlog.LogUnavailable` reaches
the caller, which answers 503 instead of a prediction that monitoring would never see.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass

import numpy as np
from flask import current_app, g, request

from heartrisk.predlog import CLIENT_REQUEST_ID_MAX, LogUnavailable, PredictionLog
from heartrisk.scoring import LoadedModel
from heartrisk.serving import metrics
from heartrisk.serving.model_holder import ModelHolder
from heartrisk.settings import Settings

log = logging.getLogger(__name__)

EXTENSION = "heartrisk"
_REQUEST_ID = re.compile(rf"[A-Za-z0-9._:-]{{1,{CLIENT_REQUEST_ID_MAX}}}")


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    holder: ModelHolder
    log: PredictionLog


@dataclass(frozen=True)
class Scored:
    model: LoadedModel
    probabilities: list[float]
    labels: list[int]


class NoModel(Exception):
    """No champion is loaded yet (or ever was): the caller answers 503 with the reason."""


def runtime() -> Runtime:
    return current_app.extensions[EXTENSION]


def request_id() -> str:
    """This request's key in the prediction log, made here (a random UUID), answered in ``X-Request-ID``.

    Never the client's: a key a client chooses could name another client's rows (a client that reuses an id
    it saw, or guesses one, would have its predictions counted as someone else's, and an account of
    acknowledged requests found by id would believe them), or collide by accident between clients that number
    their requests alike. The client's own id is kept beside it (:func:`client_request_id`).
    """
    if "request_id" not in g:
        g.request_id = uuid.uuid4().hex
    return g.request_id


def client_request_id() -> str | None:
    """The caller's X-Request-ID, logged beside the server's key when it is 1 to 64 characters of letters, digits
    and ``._:-`` (what request ids are made of); anything else is left out, never logged as sent."""
    given = request.headers.get("X-Request-ID", "")
    return given if _REQUEST_ID.fullmatch(given) else None


def score(features: np.ndarray) -> Scored:
    """Predict with the current champion and log every record before answering.

    ``features`` holds one validated record per row, in schema order (:func:`heartrisk.schema.as_matrix`).
    """
    rt = runtime()
    model = rt.holder.model
    if model is None:
        metrics.refused("model_unavailable", len(features))
        raise NoModel(rt.holder.status().problem)
    if not len(features):
        return Scored(model, [], [])
    probabilities, labels = model.predict(features)
    try:
        rt.log.append(
            features,
            probabilities,
            labels,
            model_version=model.version,
            request_id=request_id(),
            client_request_id=client_request_id(),
        )
    except LogUnavailable as exc:
        rid, client = request_id(), client_request_id()
        log.warning(
            "request %s (client's id %s) answered 503, %d prediction(s) not logged: %s", rid, client, len(labels), exc
        )
        metrics.refused("log_unavailable", len(labels))
        raise
    metrics.rows_logged(len(labels))
    scored = Scored(model, probabilities.tolist(), labels.tolist())
    metrics.observe_predictions(scored.labels)
    return scored
