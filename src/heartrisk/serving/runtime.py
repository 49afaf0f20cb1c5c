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

from heartrisk.predlog import LogUnavailable, PredictionLog
from heartrisk.scoring import LoadedModel
from heartrisk.serving import metrics
from heartrisk.serving.model_holder import ModelHolder
from heartrisk.settings import Settings

log = logging.getLogger(__name__)

EXTENSION = "heartrisk"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


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
    """The caller's X-Request-ID when it is sane, else a new one; echoed in the response."""
    if "request_id" not in g:
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    return g.request_id


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
        rt.log.append(features, probabilities, labels, model_version=model.version, request_id=request_id())
    except LogUnavailable as exc:
        log.warning("request %s answered 503, its %d prediction(s) not logged: %s", request_id(), len(labels), exc)
        metrics.refused("log_unavailable", len(labels))
        raise
    metrics.rows_logged(len(labels))
    scored = Scored(model, probabilities.tolist(), labels.tolist())
    metrics.observe_predictions(scored.labels)
    return scored
