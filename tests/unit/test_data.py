"""Data files and CSV validation: provenance checksums, and errors that name column and row."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pandas as pd
import pytest

from heartrisk import data
from heartrisk.schema import COLUMNS
from tests.support.paths import HEART, REFERENCE

# Also recorded in data/README.md; a change to either file must be deliberate.
HEART_SHA256 = "43b0368eca2f420af11ceaada19b565db750418500ecf59f70fcf974401f17f2"
REFERENCE_SHA256 = "9843d3128447144c22381942a2d91413c7baa180ad947a5d37258482b65fd8c1"


def test_checksums_match_data_readme() -> None:
    readme = (HEART.parent / "README.md").read_text()
    for path, expected in ((HEART, HEART_SHA256), (REFERENCE, REFERENCE_SHA256)):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == expected
        assert expected in readme


def test_heart_csv_is_the_cleveland_data_as_documented() -> None:
    frame = data.load_csv(HEART)
    assert list(frame.columns) == list(COLUMNS)
    assert len(frame) == 303
    assert len(data.deduplicate(frame)) == 302  # exactly one duplicated row
    assert (frame["caa"] == 4).sum() == 5
    assert (frame["thall"] == 0).sum() == 2


def test_reference_moves_four_measurements_only() -> None:
    heart, reference = data.load_csv(HEART), data.load_csv(REFERENCE)
    moved = {c for c in COLUMNS if not heart[c].equals(reference[c])}
    assert moved == {"age", "trtbps", "chol", "thalachh"}
    assert (reference["age"] - heart["age"]).eq(8).all()


def _write(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def raw() -> pd.DataFrame:
    return pd.read_csv(HEART, dtype=str)


def test_missing_column_is_named(tmp_path: Path, raw: pd.DataFrame) -> None:
    path = _write(tmp_path, raw.drop(columns=["chol"]))
    with pytest.raises(data.DataError, match=r"missing column\(s\) chol"):
        data.load_csv(path)


def test_text_in_numeric_column_names_column_and_row(tmp_path: Path, raw: pd.DataFrame) -> None:
    raw.loc[4, "trtbps"] = "high"
    with pytest.raises(data.DataError) as err:
        data.load_csv(_write(tmp_path, raw))
    message = str(err.value)
    assert "column 'trtbps', row 5 (line 6)" in message
    assert "'high' is not a number" in message
    assert "80 to 220 mm Hg" in message


def test_out_of_range_age_names_column_row_and_allowed_values(tmp_path: Path, raw: pd.DataFrame) -> None:
    raw.loc[0, "age"] = "400"
    with pytest.raises(data.DataError) as err:
        data.load_csv(_write(tmp_path, raw))
    assert "column 'age', row 1 (line 2): value '400' is out of range; allowed: 18 to 100 years" in str(err.value)


def test_unknown_code_and_fraction_are_refused(tmp_path: Path, raw: pd.DataFrame) -> None:
    raw.loc[2, "cp"] = "7"
    raw.loc[3, "chol"] = "250.5"
    with pytest.raises(data.DataError) as err:
        data.load_csv(_write(tmp_path, raw))
    message = str(err.value)
    assert "column 'cp', row 3" in message and "not a valid code" in message
    assert "column 'chol', row 4" in message and "whole number" in message


def test_empty_cell_is_required(tmp_path: Path, raw: pd.DataFrame) -> None:
    raw.loc[10, "thall"] = ""
    with pytest.raises(data.DataError, match=r"column 'thall', row 11 \(line 12\): value '' is empty"):
        data.load_csv(_write(tmp_path, raw))


def test_not_a_csv(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(data.DataError):
        data.load_csv(path)


def test_split_is_stratified_and_seeded() -> None:
    frame = data.deduplicate(data.load_csv(HEART))
    a = data.split(frame, test_size=0.2, seed=3)
    b = data.split(frame, test_size=0.2, seed=3)
    assert a[0].equals(b[0])
    assert len(a[1]) == 61
    assert abs(a[3].mean() - (1 - frame["output"]).mean()) < 0.02  # stratified on the target, disease


def test_a_csv_with_label_keeps_it_and_one_without_has_the_features_only(tmp_path: Path) -> None:
    frame = pd.read_csv(HEART).head(5)
    labelled, unlabelled = tmp_path / "labelled.csv", tmp_path / "unlabelled.csv"
    frame.to_csv(labelled, index=False)
    frame.drop(columns=["output"]).to_csv(unlabelled, index=False)
    assert list(data.read_schema_csv(labelled).columns) == list(COLUMNS)
    assert list(data.read_schema_csv(unlabelled).columns) == list(COLUMNS[:-1])
    bad = frame.copy()
    bad.loc[3, "chol"] = 5000
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(data.DataError, match=r"column 'chol', row 4"):
        data.read_schema_csv(tmp_path / "bad.csv")


def test_served_rows_are_checked_column_by_column_and_errors_name_the_real_row() -> None:
    served = data.load_csv(HEART)[list(COLUMNS[:-1])].astype(float)  # as read back from the log
    typed = data.validate_served(served, "log")
    pd.testing.assert_frame_equal(typed, data.validate_frame(served, require_target=False, source="log"))
    shuffled = served.sample(frac=1.0, random_state=0)  # a window's rows keep their index, whatever it is
    pd.testing.assert_frame_equal(data.validate_served(shuffled, "log"), typed.loc[shuffled.index])
    served.loc[257, "thall"] = 7.0
    with pytest.raises(data.DataError, match=r"log: column 'thall', row 258 \(line 259\): value 7 is not a valid"):
        data.validate_served(served, "log")
    for column, value, reason in (("age", 40.5, "must be a whole number"), ("chol", float("nan"), "is empty")):
        broken = data.load_csv(HEART)[list(COLUMNS[:-1])].astype(float)
        broken.loc[9, column] = value
        with pytest.raises(data.DataError, match=rf"log: column '{column}', row 10 \(line 11\): value .*{reason}"):
            data.validate_served(broken, "log")


def test_features_and_target_gives_disease_as_the_target() -> None:
    frame = data.load_csv(HEART)
    x, y = data.features_and_target(frame)
    assert list(x.columns) == list(COLUMNS[:-1])
    assert (y == 1 - frame["output"]).all() and y.name == "disease"


def test_an_open_file_is_read_and_checked_like_a_path_and_a_row_limit_holds() -> None:
    text = HEART.read_text()
    frame = data.read_csv(io.BytesIO(text.encode()), require_target=False, source="upload.csv")
    assert len(frame) == 303 and tuple(frame.columns) == COLUMNS[:-1]
    with pytest.raises(data.TooManyRows, match=r"upload\.csv: at most 300 rows per file; got 303"):
        data.read_csv(io.BytesIO(text.encode()), require_target=False, source="upload.csv", max_rows=300)
    bad = text.replace("\n63,1,3,145,233", "\n63,1,3,145,2330", 1)
    with pytest.raises(
        data.DataError, match=r"upload.csv: column 'chol', row 1 \(line 2\): value '2330' is out of range"
    ):
        data.read_csv(io.BytesIO(bad.encode()), require_target=False, source="upload.csv")
