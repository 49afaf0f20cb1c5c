"""A real browser (Playwright driving Debian's chromium) uses the form served by gunicorn."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from heartrisk.data import load_csv
from heartrisk.schema import BY_NAME, FEATURES, TARGET
from tests.support.app import App, Served
from tests.support.browser import chromium, fill_form, screenshot
from tests.support.paths import HEART

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore:X does not have valid feature names")]

BANDS = ((0.25, "Low"), (0.5, "Moderate"), (0.75, "High"), (1.01, "Very high"))  # as the README states them


@pytest.fixture(scope="module")
def app(served: Served) -> App:
    return served.app


@pytest.fixture(scope="module")
def pipeline(served: Served) -> Any:
    return served.pipeline


@pytest.fixture(scope="module")
def page(app: App) -> Iterator[Any]:
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1100, "height": 900}, java_script_enabled=False)
        page = context.new_page()
        page.set_default_timeout(60_000)
        yield page


@pytest.fixture(scope="module")
def patient() -> dict[str, Any]:
    row = load_csv(HEART).iloc[0]
    return {f.name: int(row[f.name]) if f.dtype == "int" else float(row[f.name]) for f in FEATURES}


def test_fill_submit_and_read_the_percentage(app: App, page: Any, pipeline: Any, patient: dict[str, Any]) -> None:
    page.goto(app.url + "/")
    fill_form(page, patient)
    page.focus("button[type=submit]")
    page.keyboard.press("Enter")  # keyboard only, no script on the page
    page.wait_for_selector("#probability")
    expected = pipeline.predict_proba(pd.DataFrame([patient]))[0, 1]
    assert page.inner_text("#probability").replace("\xa0", " ") == f"{expected * 100:.1f} %"
    assert page.text_content("#band") == next(name for upper, name in BANDS if expected < upper)
    assert page.text_content("#meaning") == TARGET.meaning
    assert page.input_value("#age") == str(patient["age"])
    assert page.eval_on_selector("#cp", "e => e.options[e.selectedIndex].text") == BY_NAME["cp"].codes[patient["cp"]]
    screenshot(page, "local", "form")  # `make screenshots` copies it to docs/ for the README


def test_invalid_value_shows_its_message_beside_the_field(app: App, page: Any, patient: dict[str, Any]) -> None:
    page.goto(app.url + "/")
    fill_form(page, {**patient, "chol": 1500})
    page.click("button[type=submit]")
    error = page.locator("#chol-error")
    assert error.is_visible()
    assert "less than or equal to 700" in error.inner_text()
    assert "chol-error" in page.get_attribute("#chol", "aria-describedby")
    assert page.locator(".field.has-error #chol-error").count() == 1
    assert page.locator(".error").count() == 1
    assert page.input_value("#chol") == "1500"
    assert page.locator(".error-summary a[href='#chol']").count() == 1
