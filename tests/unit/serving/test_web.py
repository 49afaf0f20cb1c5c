"""The risk form: built from the schema, the result in plain words, errors beside their field."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest
from flask.testing import FlaskClient
from markupsafe import escape

from heartrisk import export
from heartrisk.modelcard import INTENDED_USE
from heartrisk.predlog import open_log
from heartrisk.schema import FEATURE_NAMES, FEATURES, TARGET
from heartrisk.serving.messages import NOT_LOGGED
from heartrisk.serving.web import band
from heartrisk.settings import Settings
from tests.support.models import in_process as expected
from tests.support.predlog import count as count_rows

pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


def field_html(page: str, name: str) -> str:
    """The markup of one field's block in the form."""
    match = re.search(rf'<div class="field[^"]*">\s*<label for="{name}".*?</div>', page, re.S)
    assert match, f"no field {name}"
    return match.group(0)


def test_form_has_one_control_per_feature_built_from_the_schema(client: FlaskClient) -> None:
    page = client.get("/").get_data(as_text=True)
    for feature in FEATURES:
        block = field_html(page, feature.name)
        assert f">{feature.label}" in block
        assert f'<p class="hint" id="{feature.name}-hint">{escape(feature.help)} ' in block
        assert f'<span class="api-name">API field <code>{feature.name}</code></span>' in block
        if feature.codes is not None:
            assert f'<select id="{feature.name}" name="{feature.name}"' in block
            for code, text in feature.codes.items():
                assert f'<option value="{code}">{text}</option>' in block
        elif feature.other_units:  # the unit is chosen beside the field, so the range depends on it
            assert 'type="number"' in block and 'step="any"' in block
            assert f'<select id="{feature.name}_unit" name="{feature.name}_unit">' in block
            assert f'<option value="{feature.unit}" selected>' in block and feature.allowed() in block
            for unit in feature.other_units:
                assert f'<option value="{unit}">' in block and feature.allowed_in(unit) in block
        else:
            assert 'type="number"' in block
            assert f'min="{feature.minimum}"' in block
            assert f'max="{feature.maximum}"' in block
            assert f'step="{feature.step}"' in block
            assert feature.unit in block
    assert "<script" not in page
    assert "style=" not in page
    assert f'<p class="lead" id="meaning">{TARGET.meaning}</p>' in page


def test_original_form_post_shows_percentage_band_version_and_keeps_values(
    client: FlaskClient, pipeline, record
) -> None:
    response = client.post("/", data={k: str(v) for k, v in record.items()})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    probability = expected(pipeline, [record])[0]
    shown = re.search(r'<output id="probability" class="value">(\d+\.\d)&nbsp;%</output>', page)
    assert shown is not None and abs(float(shown.group(1)) - probability * 100) <= 0.05 + 0.01  # ONNX: within 1e-4
    assert f'<strong id="band">{band(probability).name}</strong>' in page
    assert '<span id="model-version">7</span>' in page
    assert '<span id="runtime">onnxruntime</span>' in page  # the footer says which runtime answers
    assert "not medical advice" in page
    assert f'name="age" value="{record["age"]}"' in page
    assert f'<option value="{record["cp"]}" selected>' in field_html(page, "cp")


def test_invalid_form_values_are_shown_beside_their_field(client: FlaskClient, record) -> None:
    response = client.post("/", data={**{k: str(v) for k, v in record.items()}, "age": "150", "chol": ""})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    age = field_html(page, "age")
    assert 'aria-describedby="age-hint age-error"' in age
    assert 'aria-invalid="true"' in age
    assert re.search(r'<p class="error" id="age-error">.*less than or equal to 100', age)
    assert 'value="150"' in age
    assert "a value is required" in field_html(page, "chol")
    assert 'href="#age"' in page
    assert 'id="sex-error"' not in page
    assert 'id="probability"' not in page  # no result beside errors


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 200),
        ({"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"}, 200),
        ({"Sec-Fetch-Site": "none"}, 200),
        ({"Sec-Fetch-Site": "cross-site"}, 403),
        ({"Sec-Fetch-Site": "same-site"}, 403),
        ({"Origin": "https://evil.example"}, 403),
        ({"Origin": "null"}, 403),
    ],
)
def test_form_post_refuses_cross_site_requests(client: FlaskClient, record, headers, status) -> None:
    response = client.post("/", data={k: str(v) for k, v in record.items()}, headers=headers)
    assert response.status_code == status
    assert response.mimetype == "text/html"


@pytest.mark.parametrize(("probability", "name"), [(0.0, "Low"), (0.3, "Moderate"), (0.6, "High"), (1.0, "Very high")])
def test_band_names(probability: float, name: str) -> None:
    assert band(probability).name == name


def test_a_form_result_that_cannot_be_logged_is_withheld_and_the_values_kept(unlogged_client, record) -> None:
    response = unlogged_client.post("/", data={k: str(v) for k, v in record.items()})
    page = response.get_data(as_text=True)
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert "Please try again in a moment" in page and NOT_LOGGED in page
    assert 'id="probability"' not in page
    assert f'name="chol" value="{record["chol"]}"' in page


def shown_percentage(page: str) -> str:
    found = re.search(r'<output id="probability" class="value">(\d+\.\d)&nbsp;%</output>', page)
    assert found is not None, page[:3000]
    return found.group(1)


def test_the_explain_button_posts_the_values_and_the_page_says_what_moved_the_probability(
    client: FlaskClient, record
) -> None:
    form = {k: str(v) for k, v in record.items()}
    first = client.post("/", data=form).get_data(as_text=True)
    assert 'name="explain" value="1"' in first and 'id="explanation"' not in first
    hidden = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', first))
    assert hidden == {**form, "chol_unit": "mg/dl"}
    response = client.post("/", data={**hidden, "explain": "1"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and shown_percentage(page) == shown_percentage(first)
    assert '<span id="explained-version">7</span>' in page and "not causes" in page
    lines = re.findall(r"<li>([^<]*(?:raised|lowered) it by ([\d.]+) points?)</li>", page)
    assert lines, page
    section = page[page.index('id="explanation"') : page.index("</section>", page.index('id="explanation"'))]
    assert all(section.count(escape(feature.label)) == 1 for feature in FEATURES)  # each value, once
    assert f"Resting blood pressure {record['trtbps']} mm Hg " in section
    raised = re.search(r'<ol id="raised">(.*?)</ol>', page, re.S)
    if raised:  # largest first
        points = [float(p) for p in re.findall(r"by ([\d.]+) points?", raised.group(1))]
        assert points == sorted(points, reverse=True)
    assert 'name="explain"' not in page  # explained already


def test_cholesterol_in_mmol_per_litre_gives_the_probability_of_the_same_mg_per_dl(client: FlaskClient, record) -> None:
    form = {k: str(v) for k, v in record.items()}
    in_mg = client.post("/", data={**form, "chol": "239", "chol_unit": "mg/dl"}).get_data(as_text=True)
    in_mmol = client.post("/", data={**form, "chol": "6.18", "chol_unit": "mmol/L"}).get_data(as_text=True)
    assert shown_percentage(in_mg) == shown_percentage(in_mmol)
    assert "Serum cholesterol entered as 6.18 mmol/L, read by the model as 239 mg/dl." in in_mmol
    assert 'name="chol" value="6.18"' in in_mmol and '<option value="mmol/L" selected>' in in_mmol
    assert 'id="chol-echo"' not in in_mg


def test_cholesterol_out_of_range_in_mmol_per_litre_is_said_in_that_unit(client: FlaskClient, record) -> None:
    form = {**{k: str(v) for k, v in record.items()}, "chol": "20", "chol_unit": "mmol/L"}
    response = client.post("/", data=form)
    message = re.search(r'<p class="error" id="chol-error">(.*?)</p>', response.get_data(as_text=True), re.S)
    assert response.status_code == 422 and message is not None
    assert "you entered 20 mmol/L, which is 773 mg/dl; allowed: 2.59 to 18.10 mmol/L" in message.group(1)
    unknown = client.post("/", data={**form, "chol": "6", "chol_unit": "mmol/dl"})
    assert unknown.status_code == 422 and "unknown unit" in unknown.get_data(as_text=True)


def test_the_intended_use_names_the_version_above_the_form_and_the_about_page_credits_the_study(
    client: FlaskClient,
) -> None:
    page = client.get("/").get_data(as_text=True)
    assert '<h2 id="intended-use-title">Intended use of UnitModel version 7</h2>' in page
    assert page.index('id="intended-use"') < page.index('class="record-form"')
    assert escape(INTENDED_USE) in page
    about = client.get("/about")
    text = about.get_data(as_text=True)
    assert about.status_code == 200 and "Detrano R" in text and "1989;64(5):304-310" in text
    assert "Andras Janosi" in text and "David W. Aha" in text and "<script" not in text


def upload(client: FlaskClient, text: str, name: str = "clinic.csv"):
    return client.post("/csv", data={"records": (io.BytesIO(text.encode()), name)}, content_type="multipart/form-data")


def test_an_uploaded_csv_comes_back_scored_row_by_row_and_every_row_is_logged(
    client: FlaskClient, settings: Settings, pipeline, frame
) -> None:
    rows = frame.drop(columns=["output"]).iloc[:4]
    response = upload(client, rows.to_csv(index=False))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="clinic-scored.csv"'
    scored = pd.read_csv(io.StringIO(response.get_data(as_text=True)))
    assert list(scored.columns) == [*FEATURE_NAMES, "probability", "band", "model_version"]
    assert scored[list(FEATURE_NAMES)].equals(rows.reset_index(drop=True))
    probabilities = expected(pipeline, rows.to_dict("records"))
    assert scored["probability"].tolist() == pytest.approx(probabilities, abs=export.TOLERANCE)
    assert scored["band"].tolist() == [band(p).name for p in scored["probability"]]
    assert set(scored["model_version"].astype(str)) == {"7"}
    assert count_rows(open_log(settings.predictions_db)) == 4


def test_an_upload_with_a_bad_value_names_its_row_and_column_and_nothing_is_logged(
    client: FlaskClient, settings: Settings, frame
) -> None:
    rows = frame.drop(columns=["output"]).iloc[:3].astype(str)
    rows.loc[1, "chol"] = "2330"
    response = upload(client, rows.to_csv(index=False))
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "clinic.csv: column &#39;chol&#39;, row 2 (line 3): value &#39;2330&#39; is out of range" in page
    too_many = upload(client, frame.drop(columns=["output"]).iloc[:6].to_csv(index=False))
    assert too_many.status_code == 413 and "at most 5 rows per file; got 6" in too_many.get_data(as_text=True)
    assert upload(client, "", name="").status_code == 422
    assert count_rows(open_log(settings.predictions_db)) == 0
