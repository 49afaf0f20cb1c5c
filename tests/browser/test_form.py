"""A real browser (Playwright driving Debian's chromium) uses the form served by gunicorn."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from heartrisk.data import load_csv
from heartrisk.schema import BY_NAME, FEATURES, TARGET
from tests.support.app import App, Served
from tests.support.paths import HEART
from tests.support.servers import require

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore:X does not have valid feature names")]

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
BANDS = ((0.25, "Low"), (0.5, "Moderate"), (0.75, "High"), (1.01, "Very high"))  # as the README states them


@pytest.fixture(scope="module")
def app(served: Served) -> App:
    return served.app


@pytest.fixture(scope="module")
def pipeline(served: Served) -> Any:
    return served.pipeline


@pytest.fixture(scope="module")
def page(app: App) -> Iterator[Any]:
    require(CHROMIUM.exists(), "Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(viewport={"width": 1100, "height": 900}, java_script_enabled=False)
        page = context.new_page()
        page.set_default_timeout(60_000)
        yield page
        browser.close()


@pytest.fixture(scope="module")
def patient() -> dict[str, Any]:
    row = load_csv(HEART).iloc[0]
    return {f.name: int(row[f.name]) if f.dtype == "int" else float(row[f.name]) for f in FEATURES}


def fill(page: Any, values: dict[str, Any]) -> None:
    """Enter every value the way a person does: type numbers, pick options by their label."""
    for feature in FEATURES:
        if feature.codes is not None:
            page.select_option(f"#{feature.name}", label=feature.codes[int(values[feature.name])])
        else:
            page.fill(f"#{feature.name}", str(values[feature.name]))


def test_fill_submit_and_read_the_percentage(
    app: App, page: Any, pipeline: Any, patient: dict[str, Any], tmp_path: Path
) -> None:
    page.goto(app.url + "/")
    fill(page, patient)
    page.focus("button[type=submit]")
    page.keyboard.press("Enter")  # keyboard only, no script on the page
    page.wait_for_selector("#probability")
    expected = pipeline.predict_proba(pd.DataFrame([patient]))[0, 1]
    assert page.inner_text("#probability").replace("\xa0", " ") == f"{expected * 100:.1f} %"
    assert page.text_content("#band") == next(name for upper, name in BANDS if expected < upper)
    assert page.text_content("#meaning") == TARGET.meaning
    assert page.input_value("#age") == str(patient["age"])
    assert page.eval_on_selector("#cp", "e => e.options[e.selectedIndex].text") == BY_NAME["cp"].codes[patient["cp"]]
    # `make screenshots` sets the folder to docs/; a test run never rewrites tracked files.
    screenshot = Path(os.environ.get("HEARTRISK_SCREENSHOT_DIR") or tmp_path) / "form.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000


def test_invalid_value_shows_its_message_beside_the_field(app: App, page: Any, patient: dict[str, Any]) -> None:
    page.goto(app.url + "/")
    fill(page, {**patient, "chol": 1500})
    page.click("button[type=submit]")
    error = page.locator("#chol-error")
    assert error.is_visible()
    assert "less than or equal to 700" in error.inner_text()
    assert "chol-error" in page.get_attribute("#chol", "aria-describedby")
    assert page.locator(".field.has-error #chol-error").count() == 1
    assert page.locator(".error").count() == 1
    assert page.input_value("#chol") == "1500"
    assert page.locator(".error-summary a[href='#chol']").count() == 1
