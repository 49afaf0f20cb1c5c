"""The schema is the one list of features; records are validated from it."""

from __future__ import annotations

import pandas as pd

from heartrisk import schema
from tests.support.paths import HEART

VALID = {"age": 54, "sex": 1, "cp": 0, "trtbps": 130, "chol": 246, "fbs": 0, "restecg": 1, "thalachh": 150,
         "exng": 0, "oldpeak": 1.0, "slp": 1, "caa": 0, "thall": 2}  # fmt: skip


def test_schema_matches_the_training_file_columns() -> None:
    header = list(pd.read_csv(HEART, nrows=0).columns)
    assert header == list(schema.COLUMNS)
    assert len(schema.FEATURES) == 13


def test_form_strings_are_accepted_and_typed() -> None:
    clean, errors = schema.validate_record({k: str(v) for k, v in VALID.items()})
    assert errors == {}
    assert clean["age"] == 54 and isinstance(clean["age"], int)
    assert clean["oldpeak"] == 1.0


def test_each_bad_field_gets_its_own_reason() -> None:
    bad = {**VALID, "age": 400, "cp": 9, "chol": "", "oldpeak": "abc", "extra": 1}
    _, errors = schema.validate_record(bad)
    assert set(errors) == {"age", "cp", "chol", "oldpeak", "extra"}
    assert "18 to 100 years" in errors["age"]
    assert "not a valid code" in errors["cp"]
    assert errors["chol"].startswith("a value is required")
    assert "unknown field" in errors["extra"]


def test_json_schema_is_generated_from_features() -> None:
    doc = schema.json_schema()
    assert doc["required"] == list(schema.FEATURE_NAMES)
    assert doc["properties"]["cp"]["enum"] == [0, 1, 2, 3]
    assert doc["properties"]["age"]["minimum"] == 18
    assert doc["additionalProperties"] is False


def test_json_api_accepts_only_json_numbers() -> None:
    clean, errors = schema.validate_record({**VALID, "age": 54.0}, json_numbers=True)
    assert errors == {}
    assert clean["age"] == 54
    _, errors = schema.validate_record({**VALID, "sex": True, "age": "54", "chol": None}, json_numbers=True)
    assert set(errors) == {"sex", "age", "chol"}
    assert errors["sex"].startswith("must be a JSON number, not true/false")
    assert errors["age"].startswith("must be a JSON number, not a string")
    _, errors = schema.validate_record({**VALID, "age": "54"})  # the form sends strings
    assert errors == {}


def test_the_target_is_disease_the_inverse_of_the_datasets_label() -> None:
    frame = pd.read_csv(HEART)
    disease = schema.TARGET.of(frame)
    assert disease.name == "disease"
    assert (disease == 1 - frame["output"]).all()
    assert disease.mean() == (frame["output"] == 0).mean()  # 138 of 303 patients had the disease
    assert int(disease.sum()) == 138


def test_the_docs_say_what_the_number_means_in_the_schemas_words() -> None:
    root = HEART.parents[1]
    for path in (root / "README.md", root / "data" / "README.md"):
        assert schema.TARGET.meaning in " ".join(path.read_text().split()), path


def test_every_feature_says_what_it_means() -> None:
    """The form's hint under each field: a meaning for every feature, not only the API's field name."""
    for feature in schema.FEATURES:
        assert feature.help.endswith(".") and not feature.help.startswith("Field "), feature.name


def test_a_records_refusals_keep_their_wording() -> None:
    """The words the form and the API have always shown, whichever code applies the rule."""
    cases = {
        ("age", 400): "Input should be less than or equal to 100; allowed: 18 to 100 years",
        ("oldpeak", -1): "Input should be greater than or equal to 0; allowed: 0 to 7 mm",
        ("cp", 9): "9 is not a valid code; allowed: 0 (Asymptomatic), 1 (Atypical angina), 2 (Non-anginal pain), "
        "3 (Typical angina)",
        ("chol", 250.5): "Input should be a valid integer, got a number with a fractional part; allowed: 100 to 700 "
        "mg/dl",
        ("oldpeak", float("nan")): "Input should be a finite number; allowed: 0 to 7 mm",
    }
    for (name, value), message in cases.items():
        for json_numbers in (False, True):
            assert schema.validate_record({**VALID, name: value}, json_numbers=json_numbers)[1] == {name: message}
    _, errors = schema.validate_record({**VALID, "age": "17"})
    assert errors == {"age": "Input should be greater than or equal to 18; allowed: 18 to 100 years"}
