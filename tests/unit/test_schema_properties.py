"""Property tests over the schema: generated from FEATURES, so they follow it when it changes.

Every valid record (JSON numbers or form strings, anywhere in the allowed ranges and codes) is accepted,
typed as the schema says and scored by a fitted pipeline; every record with one bad field (out of range,
wrong code, fractional where a whole number is due, not a number, missing, unknown field) is refused
with an error for that field and no other. A JSON batch refuses exactly the records that the declared
bounds and codes rule out (worked out here by hand, not by another validator), and ``validate_frame``
names the column and row of one bad cell.

The budget is fixed and the search derandomized, so CI sees the same examples on every run.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.pipeline import Pipeline

from heartrisk.data import DataError, features_and_target, load_csv, validate_frame
from heartrisk.feature import Feature
from heartrisk.model import svc_pipeline
from heartrisk.schema import FEATURE_NAMES, FEATURES, OUTPUT, PER_RECORD_BELOW, validate_record, validate_records
from tests.support.paths import HEART

BUDGET = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
COLUMNS = (*FEATURES, OUTPUT)


# ---------------------------------------------------------------------------------------------- values
def valid_number(feature: Feature) -> st.SearchStrategy[int | float]:
    """A value the schema allows, as a Python number."""
    if feature.codes is not None:
        return st.sampled_from(sorted(feature.codes))
    if feature.dtype == "int":
        return st.integers(int(feature.minimum), int(feature.maximum))
    return st.floats(feature.minimum, feature.maximum, allow_nan=False, allow_infinity=False)


def as_sent(feature: Feature, value: int | float) -> st.SearchStrategy[Any]:
    """How a client may send a valid value: JSON number, whole float for an int, or form string."""
    forms: list[Any] = [value, str(value)]
    if feature.dtype == "int":
        forms.append(float(value))
    return st.sampled_from(forms)


def valid_value(feature: Feature) -> st.SearchStrategy[Any]:
    return valid_number(feature).flatmap(lambda v: as_sent(feature, v))


def valid_records() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({f.name: valid_value(f) for f in FEATURES})


def _parses_as_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


NOT_A_NUMBER_TEXT = st.text(min_size=1, max_size=12).filter(lambda s: s.strip() != "" and not _parses_as_number(s))


def out_of_range(feature: Feature) -> st.SearchStrategy[int | float]:
    if feature.codes is not None:
        return st.integers(-(10**6), 10**6).filter(lambda v: v not in feature.codes)
    low, high = feature.minimum, feature.maximum
    if feature.dtype == "int":
        return st.integers(max_value=int(low) - 1) | st.integers(min_value=int(high) + 1)
    return (
        st.floats(max_value=low, exclude_max=True, allow_nan=False)
        | st.floats(min_value=high, exclude_min=True, allow_nan=False)
        | st.just(math.nan)
    )


def fractional(feature: Feature) -> st.SearchStrategy[float]:
    """A number inside the range that is not a whole number (for integer features and codes)."""
    low = min(feature.codes) if feature.codes is not None else feature.minimum
    high = max(feature.codes) if feature.codes is not None else feature.maximum
    return st.floats(low, high, allow_nan=False).filter(lambda v: not float(v).is_integer())


def bad_value(feature: Feature) -> st.SearchStrategy[tuple[str, Any]]:
    """(kind, value) pairs that the schema must refuse for this feature."""
    choices = [
        out_of_range(feature).map(lambda v: ("out of range or bad code", v)),
        out_of_range(feature).map(lambda v: ("out of range or bad code (form string)", str(v))),
        NOT_A_NUMBER_TEXT.map(lambda v: ("not a number", v)),
        st.sampled_from([None, [], [1], {}, {"value": 1}]).map(lambda v: ("not a number", v)),
        st.sampled_from(["", " ", "\t"]).map(lambda v: ("blank", v)),
    ]
    if feature.dtype == "int":
        choices.append(fractional(feature).map(lambda v: ("fractional", v)))
    return st.one_of(choices)


# ---------------------------------------------------------------------------------------------- records
@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    """A calibrated SVC pipeline fitted on heart.csv, the same shape training registers."""
    frame = load_csv(HEART)
    model = svc_pipeline({"kernel": "rbf", "C": 1.0, "gamma": 0.05}, calibrated=True, folds=3)
    return model.fit(*features_and_target(frame))


@BUDGET
@given(record=valid_records())
def test_every_valid_record_is_accepted_typed_and_scored(record: dict[str, Any], pipeline: Pipeline) -> None:
    clean, errors = validate_record(record)
    assert errors == {}
    assert list(clean) == list(FEATURE_NAMES)
    for feature in FEATURES:
        value = clean[feature.name]
        if feature.dtype == "int":
            assert type(value) is int
            assert value == int(float(record[feature.name]))
        else:
            assert type(value) is float
            assert value == float(record[feature.name])
        if feature.codes is not None:
            assert value in feature.codes
        else:
            assert feature.minimum <= value <= feature.maximum
    proba = pipeline.predict_proba(pd.DataFrame([clean], columns=list(FEATURE_NAMES)))[0, 1]
    assert 0.0 <= proba <= 1.0


@BUDGET
@given(record=valid_records(), data=st.data())
def test_one_bad_field_is_refused_with_an_error_for_that_field(record: dict[str, Any], data: st.DataObject) -> None:
    feature = data.draw(st.sampled_from(FEATURES), label="feature")
    kind, value = data.draw(bad_value(feature), label="bad value")
    clean, errors = validate_record({**record, feature.name: value})
    assert clean == {}
    assert set(errors) == {feature.name}, (kind, value, errors)
    message = errors[feature.name]
    assert f"allowed: {feature.allowed()}" in message
    if kind == "blank":
        assert message.startswith("a value is required")


@BUDGET
@given(record=valid_records(), data=st.data())
def test_a_missing_field_is_refused_by_name(record: dict[str, Any], data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(FEATURE_NAMES), label="missing")
    clean, errors = validate_record({k: v for k, v in record.items() if k != name})
    assert clean == {}
    assert set(errors) == {name}
    assert errors[name].startswith("a value is required")


@BUDGET
@given(
    record=valid_records(),
    extra=st.text(min_size=1, max_size=20).filter(lambda s: s not in FEATURE_NAMES),
    value=st.one_of(st.integers(), st.floats(), st.text(), st.none()),
)
def test_an_unknown_field_is_refused_by_name(record: dict[str, Any], extra: str, value: Any) -> None:
    clean, errors = validate_record({**record, extra: value})
    assert clean == {}
    assert set(errors) == {extra}
    assert "unknown field" in errors[extra]


def json_record() -> st.SearchStrategy[Any]:
    """What a JSON batch may hold: valid records, records with one bad field, a missing or extra field,
    whole floats for integers, huge integers, or something that is not an object at all."""
    valid = st.fixed_dictionaries({f.name: valid_number(f) for f in FEATURES})

    @st.composite
    def spoiled(draw: st.DrawFn) -> Any:
        record = draw(valid)
        feature = draw(st.sampled_from(FEATURES))
        how = draw(st.sampled_from(["bad", "bad", "fraction", "nan", "float", "huge", "missing", "extra", "bool"]))
        if how == "bad":
            record[feature.name] = draw(bad_value(feature))[1]
        elif how == "fraction":  # refused for whole-number features, allowed for oldpeak
            record[feature.name] = (min(feature.codes) if feature.codes else feature.minimum) + 0.5
        elif how == "nan":
            record[feature.name] = math.nan
        elif how == "float":
            record[feature.name] = float(record[feature.name])
        elif how == "huge":
            record[feature.name] = draw(st.sampled_from([10**400, -(10**400), 2**63, math.inf, -math.inf]))
        elif how == "missing":
            del record[feature.name]
        elif how == "extra":
            record["note"] = 1
        else:
            record[feature.name] = True
        return record

    return st.one_of(valid, spoiled(), spoiled(), st.sampled_from([None, 1, "x", [], [1, 2]]))


def acceptable(raw: Any) -> bool:
    """Whether the API must accept a JSON record, from the declaration alone: exactly the 13 features,
    each a finite JSON number, whole where the dtype is int, one of the codes or within the bounds."""
    if not isinstance(raw, dict) or set(raw) != set(FEATURE_NAMES):
        return False
    for feature in FEATURES:
        value = raw[feature.name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not -math.inf < value < math.inf:
            return False
        if feature.dtype == "int" and value != math.floor(value):
            return False
        if not (value in feature.codes if feature.codes is not None else feature.minimum <= value <= feature.maximum):
            return False
    return True


@BUDGET
@given(
    batch=st.one_of(
        st.lists(json_record(), min_size=1, max_size=PER_RECORD_BELOW - 1),
        st.lists(json_record(), min_size=PER_RECORD_BELOW, max_size=PER_RECORD_BELOW + 12),
    )
)
def test_a_batch_refuses_exactly_the_records_the_declaration_rules_out(batch: list[Any]) -> None:
    """Batches from PER_RECORD_BELOW records up take the column-wise path, smaller ones go record by record;
    either way a refused record gets the words a single record would get."""
    matrix, invalid = validate_records(batch)
    assert [index for index, _ in invalid] == [index for index, raw in enumerate(batch) if not acceptable(raw)]
    for index, fields in invalid:
        raw = batch[index]
        if isinstance(raw, dict):
            assert fields == validate_record(raw, json_numbers=True)[1]
        else:
            assert fields == {"record": "expected a JSON object of the 13 features"}
    refused = dict(invalid)
    for index, raw in enumerate(batch):
        if index not in refused:
            assert matrix[index].tolist() == [float(raw[name]) for name in FEATURE_NAMES]
    assert matrix.shape == (len(batch), len(FEATURES))


# ---------------------------------------------------------------------------------------------- frames
@st.composite
def valid_frames(draw: st.DrawFn) -> tuple[pd.DataFrame, list[dict[str, int | float]]]:
    rows = draw(
        st.lists(st.fixed_dictionaries({f.name: valid_number(f) for f in COLUMNS}), min_size=1, max_size=25),
        label="rows",
    )
    raw = pd.DataFrame(
        [{name: str(value) for name, value in row.items()} for row in rows],
        dtype=object,  # as read with dtype=str
    )
    return raw, rows


@BUDGET
@given(frame=valid_frames())
def test_valid_frames_are_typed_in_schema_order(frame: tuple[pd.DataFrame, list[dict]]) -> None:
    raw, rows = frame
    typed = validate_frame(raw.sample(frac=1, axis=1, random_state=0), require_target=True, source="gen.csv")
    assert list(typed.columns) == [f.name for f in COLUMNS]
    assert len(typed) == len(rows)
    for feature in COLUMNS:
        assert typed[feature.name].dtype == (np.int64 if feature.dtype == "int" else np.float64)
        expected = [row[feature.name] for row in rows]
        if feature.dtype == "int":
            assert typed[feature.name].tolist() == expected
        else:  # pd.to_numeric parses with less precision than float(): a few ulps apart
            assert np.allclose(typed[feature.name].to_numpy(), expected, rtol=1e-14, atol=0)


def bad_cell(feature: Feature) -> st.SearchStrategy[Any]:
    """Cell contents that validate_frame must refuse (strings as read from a CSV, or a missing cell)."""
    choices = [
        out_of_range(feature).filter(lambda v: not math.isnan(v)).map(str),
        st.text(alphabet="abcdghjklmopqrsuvwxz!?#/%", min_size=1, max_size=8),
        st.sampled_from(["", "  ", np.nan, None]),
    ]
    if feature.dtype == "int":
        choices.append(fractional(feature).map(str))
    return st.one_of(choices)


@BUDGET
@given(frame=valid_frames(), data=st.data())
def test_one_bad_cell_is_reported_with_its_column_and_row(
    frame: tuple[pd.DataFrame, list[dict]], data: st.DataObject
) -> None:
    raw, _ = frame
    feature = data.draw(st.sampled_from(COLUMNS), label="column")
    row = data.draw(st.integers(0, len(raw) - 1), label="row")
    value = data.draw(bad_cell(feature), label="cell")
    raw.loc[row, feature.name] = value
    with pytest.raises(DataError) as caught:
        validate_frame(raw, require_target=True, source="gen.csv")
    lines = str(caught.value).splitlines()
    assert lines  # one line per reason ("0.5" for a code is both fractional and not a code)
    for line in lines:
        assert line.startswith(f"gen.csv: column '{feature.name}', row {row + 1} (line {row + 2}): "), lines
        assert line.endswith(f"allowed: {feature.allowed()}")


@BUDGET
@given(frame=valid_frames(), data=st.data())
def test_a_missing_column_is_named(frame: tuple[pd.DataFrame, list[dict]], data: st.DataObject) -> None:
    raw, _ = frame
    name = data.draw(st.sampled_from([f.name for f in COLUMNS]), label="dropped")
    with pytest.raises(DataError, match=rf"missing column\(s\) {name};"):
        validate_frame(raw.drop(columns=[name]), require_target=True, source="gen.csv")
