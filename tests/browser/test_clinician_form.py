"""The form as a clinic uses it, in Debian's chromium: a result with its explanation, cholesterol in either unit,
the print view, a CSV file scored; axe-core finds no violation in any of those states.

The browser runs scripts here only so that axe-core can be injected (Playwright's evaluate waits for ever in a
context with scripts disabled): the pages have none, and their CSP (checked below) would refuse any.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
import requests

from heartrisk.data import load_csv
from heartrisk.schema import FEATURE_NAMES, FEATURES
from tests.support.app import Served
from tests.support.browser import accessibility_violations, chromium, fill_form, screenshot
from tests.support.paths import HEART
from tests.support.predlog import count as count_rows

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore:X does not have valid feature names")]


@pytest.fixture(scope="module")
def page(served: Served) -> Iterator[Any]:
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        page = context.new_page()
        page.set_default_timeout(60_000)
        yield page
        context.close()


@pytest.fixture(scope="module")
def patient() -> dict[str, Any]:
    row = load_csv(HEART).iloc[0]
    return {f.name: int(row[f.name]) if f.dtype == "int" else float(row[f.name]) for f in FEATURES}


def no_violations(page: Any, state: str) -> None:
    assert accessibility_violations(page) == [], f"axe-core in state {state!r}"


def percentage(page: Any) -> str:
    return page.inner_text("#probability").replace("\xa0", " ")


def test_a_result_with_its_explanation_in_words(served: Served, page: Any, patient: dict[str, Any]) -> None:
    response = page.goto(served.app.url + "/")
    assert response.headers["content-security-policy"].startswith("default-src 'none'; style-src 'self';")
    assert page.locator("script").count() == 0
    no_violations(page, "empty form")
    assert f"version {served.version}" in page.inner_text("#intended-use-title")
    fill_form(page, patient)
    page.click(".record-form button[type=submit]")
    page.wait_for_selector("#probability")
    no_violations(page, "result")
    shown = percentage(page)
    page.click("#explain")
    page.wait_for_selector("#explanation")
    no_violations(page, "result with its explanation")
    assert percentage(page) == shown
    assert page.inner_text("#explained-version") == page.inner_text("#model-version") == served.version
    api = requests.post(f"{served.app.url}/api/v1/explain", json=patient, timeout=60).json()
    largest_up = max(api["contributions"], key=api["contributions"].get)
    first = page.locator("#raised li").first.inner_text()
    label = next(f.label for f in FEATURES if f.name == largest_up)
    points = round(api["contributions"][largest_up] * 100)
    assert first.startswith(label) and first.endswith(f"raised it by {points} points"), (first, api)
    lines = page.locator("#explanation li").all_inner_texts()
    assert all(re.search(r" (raised|lowered) it by [\d.]+ points?$", line) for line in lines), lines
    screenshot(page, "local", "form-explained")  # `make screenshots` copies it to docs/ for the README


def test_cholesterol_in_mmol_per_litre_gives_the_same_probability(served: Served, page: Any, patient) -> None:
    answers = {}
    for value, unit in (("239", "mg/dl"), ("6.18", "mmol/L")):
        page.goto(served.app.url + "/")
        fill_form(page, patient)
        page.fill("#chol", value)
        page.select_option("#chol_unit", unit)
        page.click(".record-form button[type=submit]")
        page.wait_for_selector("#probability")
        answers[unit] = percentage(page)
    assert answers["mg/dl"] == answers["mmol/L"], answers
    assert page.inner_text("#chol-echo") == "Serum cholesterol entered as 6.18 mmol/L, read by the model as 239 mg/dl."
    assert page.input_value("#chol") == "6.18" and page.input_value("#chol_unit") == "mmol/L"
    no_violations(page, "result in mmol/L")


def test_the_print_view_has_values_with_units_result_explanation_version_date_and_disclaimer(
    served: Served, page: Any, patient
) -> None:
    page.goto(served.app.url + "/")
    fill_form(page, patient)
    page.fill("#chol", "6.18")
    page.select_option("#chol_unit", "mmol/L")
    page.click(".record-form button[type=submit]")
    page.click("#explain")
    page.wait_for_selector("#explanation")
    assert not page.is_visible(".entered")  # on screen the form shows the values
    page.emulate_media(media="print")
    try:
        for shown in ("#probability", "#explanation", "#model-version", "#answered-at", ".advice", ".entered"):
            assert page.is_visible(shown), shown
        for hidden in (".record-form", ".upload", "#explain", ".site-footer nav"):
            assert not page.is_visible(hidden), hidden
        values = page.inner_text(".entered")
        assert (
            "Serum cholesterol\t6.18 mmol/L (239 mg/dl)" in values
            and "ST depression induced by exercise\t2.3 mm" in values
        )
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", page.inner_text("#answered-at"))
        assert "not medical advice" in page.inner_text(".advice")
        no_violations(page, "print view")
        screenshot(page, "local", "form-print")
    finally:
        page.emulate_media(media="screen")


def test_an_uploaded_csv_comes_back_scored_and_every_row_is_logged(served: Served, page: Any) -> None:
    rows = load_csv(HEART).drop(columns=["output"]).iloc[10:30]
    before = count_rows(served.app.log)
    page.goto(served.app.url + "/")
    page.set_input_files("#records", files=[{"name": "clinic.csv", "mimeType": "text/csv",
                                             "buffer": rows.to_csv(index=False).encode()}])  # fmt: skip
    with page.expect_download() as download:
        page.click(".upload button[type=submit]")
    assert download.value.suggested_filename == "clinic-scored.csv"
    scored = pd.read_csv(download.value.path())
    assert list(scored.columns) == [*FEATURE_NAMES, "probability", "band", "model_version"]
    api = requests.post(f"{served.app.url}/api/v1/predict", json=rows.to_dict("records"), timeout=60).json()
    assert scored["probability"].tolist() == pytest.approx([a["probability"] for a in api], abs=1e-12)
    assert set(scored["model_version"].astype(str)) == {served.version}
    assert count_rows(served.app.log) - before == 2 * len(rows)  # the upload's rows, then the API's


def test_an_upload_with_a_bad_value_names_row_and_column(served: Served, page: Any) -> None:
    rows = load_csv(HEART).drop(columns=["output"]).iloc[:3].astype(str)
    rows.loc[2, "thall"] = "7"
    page.goto(served.app.url + "/")
    page.set_input_files("#records", files=[{"name": "clinic.csv", "mimeType": "text/csv",
                                             "buffer": rows.to_csv(index=False).encode()}])  # fmt: skip
    page.click(".upload button[type=submit]")
    page.wait_for_selector("#upload-errors")
    assert "clinic.csv: column 'thall', row 3 (line 4): value '7' is not a valid code" in page.inner_text(
        "#upload-errors"
    )
    no_violations(page, "upload refused")


def test_the_about_page_credits_the_study(served: Served, page: Any) -> None:
    page.goto(served.app.url + "/")
    page.click("text=About, references and credit")
    assert "Detrano R" in page.inner_text("main") and "David W. Aha" in page.inner_text("#donors")
    no_violations(page, "about")
