"""The risk form: one control per feature of the schema, server-side validation, no JavaScript.

``POST /`` takes the original project's field names (the schema's), so its clients keep working.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from flask import Blueprint, Response, abort, render_template, request

from heartrisk.data import DataError, TooManyRows, read_csv
from heartrisk.modelcard import INTENDED_USE
from heartrisk.predlog import LogUnavailable
from heartrisk.schema import BY_NAME, FEATURE_NAMES, FEATURES, TARGET, as_matrix, validate_record
from heartrisk.serving import metrics, reading, security
from heartrisk.serving.explanations import explained
from heartrisk.serving.messages import NOT_LOGGED, RETRY_AFTER_SECONDS, no_model_advice
from heartrisk.serving.runtime import NoModel, Scored, runtime, score

if TYPE_CHECKING:
    from heartrisk.explain import Explanation

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
    *,
    values: dict[str, str],
    errors: dict[str, str],
    result: Scored | None,
    status: int = 200,
    not_saved: str = "",
    units: dict[str, str] | None = None,
    entered: dict[str, reading.Entered] | None = None,
    explanation: Explanation | None = None,
    upload_errors: list[str] | None = None,
):
    rt = runtime()
    model = rt.holder.model
    holder = rt.holder.status()
    html = render_template(
        "form.html",
        features=FEATURES,
        by_name=BY_NAME,
        target=TARGET,
        intended_use=INTENDED_USE,
        values=values,
        units=units or {},
        errors=errors,
        result=result,
        probability=None if result is None else result.probabilities[0],
        answered_at=datetime.now(UTC),
        entered=entered or {},
        explanation=explanation,
        reading=reading.reading,
        band=band,
        in_ten=in_ten,
        model=model,
        problem=holder.problem if model is None else "",
        train_hint=no_model_advice(holder) if model is None else "",
        mlflow_url=rt.settings.mlflow.public_url,
        not_saved=not_saved,
        upload_errors=upload_errors or [],
        max_rows=rt.settings.app.max_batch_rows,
    )
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if not_saved else {}
    return html, status, headers


@bp.get("/")
def form():
    return _page(values={}, errors={}, result=None)


@bp.get("/about")
def about():
    return render_template("about.html", target=TARGET, intended_use=INTENDED_USE, model=runtime().holder.model)


@bp.post("/")
def submit():
    if security.cross_site_reason(request) is not None:
        abort(403, description="This form only accepts submissions from its own page.")
    raw = {name: request.form.get(name, "").strip() for name in FEATURE_NAMES}
    units, errors = _units()
    converted = _in_stored_units(raw, units)
    clean, invalid = validate_record(converted)
    errors = {**_in_units(invalid, raw, converted, units), **errors}
    if errors:
        metrics.refused("validation", 1)
        return _page(values=raw, units=units, errors=errors, result=None, status=422)
    # "1.0" posted by a script selects "1"; a value in another unit stays as entered
    values = {name: raw[name] if units.get(name, BY_NAME[name].unit) != BY_NAME[name].unit else str(clean[name])
              for name in FEATURE_NAMES}  # fmt: skip
    page = {"values": values, "units": units, "errors": {}}
    try:
        if request.form.get("explain") == "1":
            result, explanation = explained(as_matrix([clean]))
        else:
            result, explanation = score(as_matrix([clean])), None
    except (NoModel, LogUnavailable) as exc:  # the values stay in the form, so trying again is one click
        return _unavailable(exc, **page)
    shown = reading.entered(clean, raw, units)
    return _page(**page, result=result, entered=shown, explanation=explanation)


@bp.post("/csv")
def score_csv():
    """A CSV file of records in, the same rows with probability, band and model version out (a download).

    The file is read and checked by :func:`heartrisk.data.read_csv` (messages name the row and the column), at
    most the batch API's number of rows (and its body size), and scored and logged by :func:`score`.
    """
    if security.cross_site_reason(request) is not None:
        abort(403, description="This form only accepts submissions from its own page.")
    upload = request.files.get("records")
    if upload is None or not upload.filename:
        return _page(values={}, errors={}, result=None, status=422, upload_errors=["Choose a CSV file to upload."])
    name = _safe_name(upload.filename)
    try:
        frame = read_csv(
            upload.stream, require_target=False, source=name, max_rows=runtime().settings.app.max_batch_rows
        )
    except DataError as exc:
        metrics.refused("validation", 1)
        status = 413 if isinstance(exc, TooManyRows) else 422
        return _page(values={}, errors={}, result=None, status=status, upload_errors=str(exc).splitlines())
    try:
        scored = score(frame.to_numpy(dtype=float))
    except (NoModel, LogUnavailable) as exc:
        return _unavailable(exc, values={}, errors={})
    frame["probability"] = scored.probabilities
    frame["band"] = [band(p).name for p in scored.probabilities]
    frame["model_version"] = scored.model.version
    disposition = f'attachment; filename="{name.removesuffix(".csv")}-scored.csv"'
    return Response(frame.to_csv(index=False), mimetype="text/csv", headers={"Content-Disposition": disposition})


def _unavailable(exc: NoModel | LogUnavailable, **page):
    """The 503 page of a request that cannot be answered now: no model yet, or the log cannot be written (said)."""
    return _page(**page, result=None, status=503, not_saved=NOT_LOGGED if isinstance(exc, LogUnavailable) else "")


def _safe_name(filename: str) -> str:
    """The uploaded file's own name, reduced to what is safe in a message and a download's name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1])[:100] or "upload.csv"


def _units() -> tuple[dict[str, str], dict[str, str]]:
    """The unit chosen beside each field that offers one (its stored unit when none is sent), and the fields
    whose unit is not one of theirs."""
    units, errors = {}, {}
    for feature in FEATURES:
        if feature.other_units:
            unit = request.form.get(f"{feature.name}_unit", feature.unit)
            known = [feature.unit, *feature.other_units]
            units[feature.name] = unit if unit in known else feature.unit
            if unit not in known:
                errors[feature.name] = f"unknown unit {unit!r}; one of: {', '.join(known)}"
    return units, errors


def _in_stored_units(raw: dict[str, str], units: dict[str, str]) -> dict[str, str]:
    """The form's values with those entered in another unit converted (a value that is not a number is left to
    validation, which names it)."""
    converted = dict(raw)
    for name, unit in units.items():
        try:
            number = float(raw[name])
        except ValueError:
            continue
        if unit != BY_NAME[name].unit and math.isfinite(number):
            stored = BY_NAME[name].in_stored_unit(number, unit)
            converted[name] = str(int(stored)) if BY_NAME[name].dtype == "int" else str(stored)
    return converted


def _in_units(errors: dict[str, str], raw: dict[str, str], converted: dict[str, str], units: dict[str, str]):
    """Validation's messages, with the value's conversion and its range in the unit the person chose."""
    said = dict(errors)
    for name, message in errors.items():
        feature = BY_NAME.get(name)
        unit = units.get(name)
        if feature is not None and unit is not None and unit != feature.unit:
            said[name] = (
                f"{message} (you entered {raw[name]} {unit}, which is {converted[name]} {feature.unit}; "
                f"allowed: {feature.allowed_in(unit)})"
            )
    return said
