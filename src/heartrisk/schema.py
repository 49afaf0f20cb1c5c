"""The 13 clinical features and the target: the only place in HeartRisk that lists them.

The form, the JSON API (and its OpenAPI document), CSV validation, training and drift monitoring all
read from :data:`FEATURES`. Codes follow the Kaggle republication of UCI Cleveland; their meanings were
checked row by row against the UCI original (see ``data/README.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class Feature:
    """One input column: how it is stored, shown and checked."""

    name: str
    label: str
    kind: Kind
    dtype: Literal["int", "float"]
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    step: float = 1
    codes: Mapping[int, str] | None = None
    help: str = ""

    def allowed(self) -> str:
        """Human description of the allowed values, used in every error message."""
        if self.codes is not None:
            return ", ".join(f"{code} ({text})" for code, text in self.codes.items())
        unit = f" {self.unit}" if self.unit else ""
        return f"{_fmt(self.minimum)} to {_fmt(self.maximum)}{unit}"

    def check(self, value: Any) -> tuple[float | int | None, str | None]:
        """Convert one raw value (str, int, float) and check it; return (value, error)."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return None, "a value is required"
        if isinstance(value, bool):
            return None, f"must be a number; allowed: {self.allowed()}"
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None, f"{value!r} is not a number; allowed: {self.allowed()}"
        if number != number or number in (float("inf"), float("-inf")):
            return None, f"must be a finite number; allowed: {self.allowed()}"
        if self.dtype == "int":
            if number != int(number):
                return None, f"{_fmt(number)} must be a whole number; allowed: {self.allowed()}"
            number = int(number)
        if self.codes is not None:
            if number not in self.codes:
                return None, f"{_fmt(number)} is not a valid code; allowed: {self.allowed()}"
        elif (self.minimum is not None and number < self.minimum) or (
            self.maximum is not None and number > self.maximum
        ):
            return None, f"{_fmt(number)} is out of range; allowed: {self.allowed()}"
        return number, None


def _fmt(number: float | None) -> str:
    if number is None:
        return "?"
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


FEATURES: tuple[Feature, ...] = (
    Feature("age", "Age", "numeric", "int", "years", 18, 100, help="Age in whole years."),
    Feature("sex", "Sex", "categorical", "int", codes={0: "Female", 1: "Male"}),
    Feature(
        "cp",
        "Chest pain type",
        "categorical",
        "int",
        codes={0: "Asymptomatic", 1: "Atypical angina", 2: "Non-anginal pain", 3: "Typical angina"},
    ),
    Feature("trtbps", "Resting blood pressure", "numeric", "int", "mm Hg", 80, 220, help="Systolic, at rest."),
    Feature("chol", "Serum cholesterol", "numeric", "int", "mg/dl", 100, 700),
    Feature(
        "fbs",
        "Fasting blood sugar above 120 mg/dl",
        "categorical",
        "int",
        codes={0: "No (120 mg/dl or less)", 1: "Yes (over 120 mg/dl)"},
    ),
    Feature(
        "restecg",
        "Resting ECG",
        "categorical",
        "int",
        codes={0: "Left ventricular hypertrophy", 1: "Normal", 2: "ST-T wave abnormality"},
    ),
    Feature("thalachh", "Maximum heart rate achieved", "numeric", "int", "beats/min", 50, 230),
    Feature("exng", "Exercise-induced angina", "categorical", "int", codes={0: "No", 1: "Yes"}),
    Feature(
        "oldpeak",
        "ST depression induced by exercise",
        "numeric",
        "float",
        "mm",
        0,
        7,
        step=0.1,
        help="Relative to rest.",
    ),
    Feature(
        "slp",
        "Slope of the peak exercise ST segment",
        "categorical",
        "int",
        codes={0: "Downsloping", 1: "Flat", 2: "Upsloping"},
    ),
    Feature(
        "caa",
        "Major vessels coloured by fluoroscopy",
        "categorical",
        "int",
        codes={0: "0", 1: "1", 2: "2", 3: "3", 4: "Unknown (missing in source)"},
    ),
    Feature(
        "thall",
        "Thallium stress test",
        "categorical",
        "int",
        codes={0: "Unknown (missing in source)", 1: "Fixed defect", 2: "Normal", 3: "Reversible defect"},
    ),
)

TARGET = Feature(
    "output",
    "Elevated risk (dataset label)",
    "categorical",
    "int",
    codes={0: "Less chance", 1: "More chance"},
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
NUMERIC_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.kind == "numeric")
CATEGORICAL_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.kind == "categorical")
COLUMNS: tuple[str, ...] = (*FEATURE_NAMES, TARGET.name)
BY_NAME: dict[str, Feature] = {f.name: f for f in (*FEATURES, TARGET)}


def validate_record(raw: Mapping[str, Any]) -> tuple[dict[str, float | int], dict[str, str]]:
    """Check one record of the 13 features; return (clean values, {field: reason}).

    Unknown keys are reported too, so a typo in a field name is not silently ignored.
    """
    clean: dict[str, float | int] = {}
    errors: dict[str, str] = {}
    for feature in FEATURES:
        if feature.name not in raw:
            errors[feature.name] = f"missing; allowed: {feature.allowed()}"
            continue
        value, error = feature.check(raw[feature.name])
        if error:
            errors[feature.name] = error
        else:
            clean[feature.name] = value  # type: ignore[assignment]
    for key in raw:
        if key not in BY_NAME:
            errors[str(key)] = "unknown field; expected one of: " + ", ".join(FEATURE_NAMES)
    return clean, errors


def json_schema() -> dict[str, Any]:
    """JSON Schema of one record, generated from :data:`FEATURES` (used by the OpenAPI document)."""
    properties: dict[str, Any] = {}
    for f in FEATURES:
        prop: dict[str, Any] = {
            "type": "integer" if f.dtype == "int" else "number",
            "title": f.label,
            "description": (f"{f.label} ({f.unit}). " if f.unit else f"{f.label}. ") + f"Allowed: {f.allowed()}.",
        }
        if f.codes is not None:
            prop["enum"] = list(f.codes)
        else:
            prop["minimum"] = f.minimum
            prop["maximum"] = f.maximum
        properties[f.name] = prop
    return {
        "type": "object",
        "properties": properties,
        "required": list(FEATURE_NAMES),
        "additionalProperties": False,
    }
