"""The risk form: built from the schema, the result in plain words, errors beside their field."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from markupsafe import escape

from heartrisk.schema import FEATURES, TARGET
from heartrisk.serving.messages import NOT_LOGGED
from heartrisk.serving.web import band
from tests.support.models import in_process as expected

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
