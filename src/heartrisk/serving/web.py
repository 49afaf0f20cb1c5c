"""The risk form: one control per feature of the schema, server-side validation, no JavaScript.

``POST /`` takes the original project's field names (the schema's), so its clients keep working.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, abort, render_template, request

from heartrisk.predlog import LogUnavailable
from heartrisk.schema import BY_NAME, FEATURE_NAMES, FEATURES, TARGET, as_matrix, validate_record
from heartrisk.serving import metrics, security
from heartrisk.serving.messages import NOT_LOGGED, RETRY_AFTER_SECONDS, no_model_advice
from heartrisk.serving.runtime import NoModel, Scored, runtime, score

bp = Blueprint("web", __name__)


@dataclass(frozen=True)
class Band:
    name: str
    css: str


BANDS = (  # upper bound (exclusive) of the probability, band
    (0.25, Band("Low", "low")),
    (0.5, Band("Moderate", "moderate")),
    (0.75, Band("High", "high")),
    (1.01, Band("Very high", "very-high")),
)


def band(probability: float) -> Band:
    return next(b for upper, b in BANDS if probability < upper)


def in_ten(probability: float) -> str:
    """The probability in words a person reads without a calculator."""
    return f"about {round(probability * 10)} in 10"


def _page(
    *, values: dict[str, str], errors: dict[str, str], result: Scored | None, status: int = 200, not_saved: str = ""
):
    rt = runtime()
    model = rt.holder.model
    holder = rt.holder.status()
    html = render_template(
        "form.html",
        features=FEATURES,
        by_name=BY_NAME,
        target=TARGET,
        values=values,
        errors=errors,
        result=result,
        probability=None if result is None else result.probabilities[0],
        band=band,
        in_ten=in_ten,
        model=model,
        problem=holder.problem if model is None else "",
        train_hint=no_model_advice(holder) if model is None else "",
        mlflow_url=rt.settings.mlflow.public_url,
        not_saved=not_saved,
    )
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if not_saved else {}
    return html, status, headers


@bp.get("/")
def form():
    return _page(values={}, errors={}, result=None)


@bp.post("/")
def submit():
    if security.cross_site_reason(request) is not None:
        abort(403, description="This form only accepts submissions from its own page.")
    values = {name: request.form.get(name, "").strip() for name in FEATURE_NAMES}
    clean, errors = validate_record(values)
    if errors:
        metrics.refused("validation", 1)
        return _page(values=values, errors=errors, result=None, status=422)
    values = {name: str(clean[name]) for name in FEATURE_NAMES}  # "1.0" posted by a script selects "1"
    try:
        result = score(as_matrix([clean]))
    except NoModel:
        return _page(values=values, errors={}, result=None, status=503)
    except LogUnavailable:  # the values stay in the form, so trying again is one click
        return _page(values=values, errors={}, result=None, status=503, not_saved=NOT_LOGGED)
    return _page(values=values, errors={}, result=result)
