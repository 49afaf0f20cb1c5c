"""The 13 clinical features and the target (coronary artery disease): the only place that lists them.

The form, the JSON API (and its OpenAPI document), CSV validation, training and drift monitoring all
read from :data:`FEATURES`. Codes follow the Kaggle republication of UCI Cleveland; their meanings were
checked row by row against the UCI original (see ``data/README.md``). Each feature's rule is evaluated by
:meth:`heartrisk.feature.Feature.violations`, here for one record (form or API) and for JSON batches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Annotated, Any

import numpy as np
from pydantic import AfterValidator, ConfigDict, Field, ValidationError, create_model

from heartrisk.feature import Feature

FEATURES: tuple[Feature, ...] = (
    Feature("age", "Age", "numeric", "int", "years", 18, 100, help="Age in whole years."),
    Feature("sex", "Sex", "categorical", "int", codes={0: "Female", 1: "Male"}, help="Sex as recorded in the study."),
    Feature(
        "cp",
        "Chest pain type",
        "categorical",
        "int",
        codes={0: "Asymptomatic", 1: "Atypical angina", 2: "Non-anginal pain", 3: "Typical angina"},
        help="The chest pain the person has: typical angina is pressure on exertion, relieved by rest; "
        "asymptomatic means none.",
    ),
    Feature("trtbps", "Resting blood pressure", "numeric", "int", "mm Hg", 80, 220, help="Systolic, at rest."),
    # 1 mmol/L of cholesterol is 38.67 mg/dl (derivation: data/README.md); not formatted, to stay on two lines
    Feature("chol", "Serum cholesterol", "numeric", "int", "mg/dl", 100, 700, help="Total cholesterol in the blood.",
            other_units={"mmol/L": 38.67}),
    Feature(
        "fbs",
        "Fasting blood sugar above 120 mg/dl",
        "categorical",
        "int",
        codes={0: "No (120 mg/dl or less)", 1: "Yes (over 120 mg/dl)"},
        help="Blood sugar after a night without food.",
    ),
    Feature(
        "restecg",
        "Resting ECG",
        "categorical",
        "int",
        codes={0: "Left ventricular hypertrophy", 1: "Normal", 2: "ST-T wave abnormality"},
        help="The electrocardiogram (ECG) at rest.",
    ),
    Feature(
        "thalachh",
        "Maximum heart rate achieved",
        "numeric",
        "int",
        "beats/min",
        50,
        230,
        help="The highest heart rate reached in the exercise test.",
    ),
    Feature(
        "exng",
        "Exercise-induced angina",
        "categorical",
        "int",
        codes={0: "No", 1: "Yes"},
        help="Chest pain brought on by the exercise test.",
    ),
    Feature(
        "oldpeak",
        "ST depression induced by exercise",
        "numeric",
        "float",
        "mm",
        0,
        7,
        step=0.1,
        help="How far the ST segment of the ECG drops in exercise, relative to rest.",
    ),
    Feature(
        "slp",
        "Slope of the peak exercise ST segment",
        "categorical",
        "int",
        codes={0: "Downsloping", 1: "Flat", 2: "Upsloping"},
        help="The shape of the ECG's ST segment at peak exercise.",
    ),
    Feature(
        "caa",
        "Major vessels coloured by fluoroscopy",
        "categorical",
        "int",
        codes={0: "0", 1: "1", 2: "2", 3: "3", 4: "Unknown (missing in source)"},
        help="How many of the major heart vessels the X-ray dye (fluoroscopy) showed.",
    ),
    Feature(
        "thall",
        "Thallium stress test",
        "categorical",
        "int",
        codes={0: "Unknown (missing in source)", 1: "Fixed defect", 2: "Normal", 3: "Reversible defect"},
        help="The thallium scan of blood flow to the heart muscle.",
    ),
)  # fmt: skip

OUTPUT = Feature(  # the dataset's label column, as the CSV files hold it (data/README.md)
    "output",
    "Dataset label (Kaggle's output)",
    "categorical",
    "int",
    codes={0: "UCI num 1 to 4: significant coronary artery disease", 1: "UCI num 0: no significant narrowing"},
)


@dataclass(frozen=True)
class Target:
    """What the model predicts, derived from the dataset's label in this one place.

    A row-by-row join with the UCI original shows that Kaggle's ``output = 1`` is UCI ``num = 0``: no
    vessel narrowed by more than 50 %. The positive class is therefore ``1 - output``, the UCI diagnosis.
    """

    name: str
    label: str
    source: Feature
    meaning: str

    def of(self, frame: Any) -> Any:
        """The target column of a frame that holds the dataset's label (1 = disease)."""
        return (1 - frame[self.source.name]).rename(self.name)


TARGET = Target(
    name="disease",
    label="Significant coronary artery disease",
    source=OUTPUT,
    meaning=(
        "HeartRisk gives the probability that a person with these values had significant coronary artery "
        "disease (a heart vessel narrowed by more than 50 % at angiography) in the 1988 Cleveland study, a "
        "main cause of heart attacks; it is not a diagnosis and not medical advice."
    ),
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
NUMERIC_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.kind == "numeric")
CATEGORICAL_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.kind == "categorical")
COLUMNS: tuple[str, ...] = (*FEATURE_NAMES, OUTPUT.name)
BY_NAME: dict[str, Feature] = {f.name: f for f in (*FEATURES, OUTPUT)}


# How a single record words each reason of Feature.violations: as pydantic did when it held the bounds
# (pydantic's int still refuses a fraction before the rule sees it, in these same words).
_RECORD_REASON = {
    "fraction": "Input should be a valid integer, got a number with a fractional part",
    "code": "{value} is not a valid code",
    "below": "Input should be greater than or equal to {feature.minimum}",
    "above": "Input should be less than or equal to {feature.maximum}",
}


def _field(feature: Feature) -> tuple[Any, Any]:
    """The pydantic type of one feature: pydantic parses the value into its dtype (a form's "54" into 54;
    it refuses "54.5" itself, in its own words), then the feature's rule checks the number."""

    def rule(value: int | float) -> int | float:
        for broken, reason in feature.violations(value):
            if broken:
                raise ValueError(_RECORD_REASON[reason].format(value=value, feature=feature))
        return value

    number = int if feature.dtype == "int" else Annotated[float, Field(allow_inf_nan=False)]  # int refuses NaN itself
    shown = {"minimum": feature.minimum, "maximum": feature.maximum}  # for the OpenAPI document
    if feature.codes is not None:
        shown = {"enum": list(feature.codes)}
    unit = f" ({feature.unit})" if feature.unit else ""
    description = f"{feature.label}{unit}. Allowed: {feature.allowed()}."
    field = Field(title=feature.label, description=description, json_schema_extra=shown)
    return Annotated[number, AfterValidator(rule)], field


Record = create_model(  # one patient's 13 features; validates form strings and JSON numbers alike
    "Record",
    __config__=ConfigDict(extra="forbid"),
    **{f.name: _field(f) for f in FEATURES},
)


_JSON_TYPE = {bool: "true/false", str: "a string", type(None): "null", list: "an array", dict: "an object"}


def validate_record(
    raw: Mapping[str, Any], *, json_numbers: bool = False
) -> tuple[dict[str, float | int], dict[str, str]]:
    """Check one record of the 13 features; return (clean values, {field: reason}).

    Form values arrive as strings and are converted; with ``json_numbers`` (the JSON API, whose OpenAPI
    document says integer / number) only JSON numbers are accepted, so ``true`` or ``"54"`` is refused.
    Unknown keys are reported too, so a typo in a field name is not silently ignored.
    """
    blank = {k for k, v in raw.items() if k in BY_NAME and isinstance(v, str) and not v.strip()}
    present = {k: v for k, v in raw.items() if k not in blank}  # a blank form field is a missing value
    errors: dict[str, str] = {}
    if json_numbers:
        for name, value in raw.items():
            if name in BY_NAME and (isinstance(value, bool) or not isinstance(value, int | float)):
                kind = _JSON_TYPE.get(type(value), type(value).__name__)
                errors[name] = f"must be a JSON number, not {kind}; allowed: {BY_NAME[name].allowed()}"
    try:
        clean = Record.model_validate(present).model_dump()
    except ValidationError as exc:
        clean = {}
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "record"
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "missing":
                message = "a value is required"
            elif error["type"] == "extra_forbidden":
                message = "unknown field; expected one of: " + ", ".join(FEATURE_NAMES)
            if name in BY_NAME and error["type"] != "extra_forbidden":
                message += f"; allowed: {BY_NAME[name].allowed()}"
            errors.setdefault(name, message)
    return ({}, errors) if errors else (clean, {})


def as_matrix(records: Sequence[Mapping[str, float | int]]) -> np.ndarray:
    """Clean records as one float row each, in schema order (what the model and the log take)."""
    return np.array([_in_order(record) for record in records], dtype=float).reshape(len(records), len(FEATURES))


# A valid record (the lowest code or value of each feature): the placeholder row of a batch record that
# goes the slow way, and the record a new model must answer before it serves.
VALID_RECORD: dict[str, float] = {f.name: float(min(f.codes) if f.codes is not None else f.minimum) for f in FEATURES}

_in_order = itemgetter(*FEATURE_NAMES)
_JSON_NUMBERS = {int, float}
_LOW = np.array(list(VALID_RECORD.values()), dtype=float)
PER_RECORD_BELOW = 5  # smaller batches are validated record by record (see validate_records)


def validate_records(raws: Sequence[Any]) -> tuple[np.ndarray, list[tuple[int, dict[str, str]]]]:
    """Check a batch of JSON records; return (matrix in schema order, [(index, {field: reason})]).

    The same rules as :func:`validate_record` with ``json_numbers``, checked column-wise with numpy
    (a 10 000-record batch in milliseconds instead of a second of per-record validation). A record
    the fast check does not pass goes through :func:`validate_record`, which has the last word and
    writes the messages, so both paths accept exactly the same records. Below
    :data:`PER_RECORD_BELOW` records every record goes that way: it takes about 19 us a record, the
    column-wise check about 80 us whatever the batch (CPU time, measured with timeit).
    """
    if len(raws) < PER_RECORD_BELOW:
        matrix, slow = np.tile(_LOW, (len(raws), 1)), set(range(len(raws)))
    else:
        matrix, slow = _column_check(raws)
    errors: list[tuple[int, dict[str, str]]] = []
    for index in sorted(slow):
        raw = raws[index]
        if not isinstance(raw, dict):
            errors.append((index, {"record": "expected a JSON object of the 13 features"}))
            continue
        clean, fields = validate_record(raw, json_numbers=True)
        if fields:
            errors.append((index, fields))
        else:
            matrix[index] = _in_order(clean)
    return matrix, errors


def _column_check(raws: Sequence[Any]) -> tuple[np.ndarray, set[int]]:
    """The batch as a matrix (a placeholder row where a record is not plain numbers), and the records
    the column-wise check does not pass."""
    rows: list[tuple[Any, ...]] = []
    slow: set[int] = set()
    placeholder = tuple(_LOW)
    for index, raw in enumerate(raws):
        if type(raw) is dict and len(raw) == len(FEATURES):
            try:
                rows.append(_in_order(raw))
                continue
            except KeyError:
                pass
        slow.add(index)
        rows.append(placeholder)
    if not set(map(type, chain.from_iterable(rows))) <= _JSON_NUMBERS:
        slow.update(i for i, row in enumerate(rows) if not all(type(v) in _JSON_NUMBERS for v in row))
        rows = [placeholder if i in slow else row for i, row in enumerate(rows)]
    try:
        matrix = np.array(rows, dtype=float).reshape(len(rows), len(FEATURES))
    except OverflowError:  # an integer beyond float range somewhere: let the record checks name it
        return np.tile(_LOW, (len(rows), 1)), set(range(len(rows)))
    bad = np.column_stack([feature.refused(matrix[:, column]) for column, feature in enumerate(FEATURES)])
    slow.update(np.flatnonzero(bad.any(axis=1)).tolist())
    return matrix, slow


def json_schema() -> dict[str, Any]:
    """JSON Schema of one record, generated from :data:`FEATURES` (used by the OpenAPI document)."""
    return Record.model_json_schema()
