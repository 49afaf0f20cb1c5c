"""Fuzzing the app under real gunicorn with a real champion: the JSON API against its own OpenAPI
document (schemathesis), and the form with hypothesis. Nothing answers 5xx; every answer is as documented.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heartrisk.config import BIN
from heartrisk.schema import FEATURES, as_matrix, validate_record
from tests.support.app import App, Served
from tests.support.predlog import count as count_rows

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:X does not have valid feature names")]

CONFIG = Path(__file__).with_name("schemathesis.toml")


RESULT = re.compile(r'<output id="probability" class="value">(\d+\.\d)&nbsp;%</output>')


@pytest.fixture
def app(served: Served) -> App:
    return served.app


@pytest.fixture
def pipeline(served: Served) -> Any:
    return served.pipeline


def test_api_conforms_to_its_openapi_document_under_schemathesis(app: App, tmp_path: Path) -> None:
    before = count_rows(app.log)
    run = subprocess.run(
        [
            str(BIN / "st"),
            "--config-file",
            str(CONFIG),
            "--no-color",
            "run",
            f"{app.url}/api/v1/openapi.json",
            "--url",
            app.url,
            "--request-timeout",
            "60",
        ],
        cwd=tmp_path,  # schemathesis' own files stay out of the repository
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    summary = run.stdout[run.stdout.find("=== SUMMARY") :] if "=== SUMMARY" in run.stdout else run.stdout[-3000:]
    print(summary)
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    outcomes = {word: int(count) for count, word in re.findall(r"(\d+) (passed|failed|errored)", summary)}
    assert outcomes.get("passed", 0) >= 1 and not outcomes.get("failed") and not outcomes.get("errored"), summary
    assert count_rows(app.log) > before  # valid cases reached the model and were logged
    assert "unexpected error" not in app.app_log.read_text()  # no traceback behind a 4xx either


def _form_value(feature: Any) -> st.SearchStrategy[str]:
    """Anything a browser or a script may post in one field: valid, out of range, junk, markup."""
    if feature.codes is not None:
        valid = st.sampled_from([str(c) for c in feature.codes])
    elif feature.dtype == "int":
        valid = st.integers(int(feature.minimum), int(feature.maximum)).map(str)
    else:
        valid = st.floats(feature.minimum, feature.maximum).map(str)
    junk = st.one_of(
        st.text(max_size=30),
        st.integers().map(str),
        st.floats().map(str),
        st.text(max_size=10).map(lambda s: f'"><script>alert({s!r})</script>'),
    )
    return st.one_of(valid, valid, junk)


FORMS = st.fixed_dictionaries(
    {},
    optional={f.name: _form_value(f) for f in FEATURES} | {"unexpected": st.text(max_size=10)},
)


@settings(max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(form=FORMS)
def test_the_form_never_fails_and_never_reflects_markup(app: App, pipeline: Any, form: dict[str, str]) -> None:
    """A valid form shows exactly the model's probability; anything else is a 422 with the fields named."""
    response = requests.post(f"{app.url}/", data=form, timeout=60)
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<script>alert(" not in response.text  # user input is escaped, never markup
    clean, errors = validate_record({f.name: form.get(f.name, "").strip() for f in FEATURES})
    if errors:
        assert response.status_code == 422, response.text[:500]
        assert all(f'id="{name}-error"' in response.text for name in errors)
        assert RESULT.search(response.text) is None
    else:
        assert response.status_code == 200, response.text[:500]
        expected = pipeline.predict_proba(as_matrix([clean]))[0, 1]
        assert RESULT.search(response.text).group(1) == f"{expected * 100:.1f}"
