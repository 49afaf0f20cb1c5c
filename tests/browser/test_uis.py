"""The UIs of `make up`'s layout in a real browser: what an ML engineer does in Prefect and MLflow.

The stack is the session's (``heartrisk prefect-server``, ``heartrisk worker`` and ``mlflow server`` as
`make up` starts them, set up by ``heartrisk bootstrap``). The Docker layouts run the same steps in
tests/stack/; a Prefect setting that breaks the UI's Quick run (CSRF, CORS, the UI's files) fails here.
"""

from __future__ import annotations

import time

import pytest

from tests.support.browser import (
    chromium,
    mlflow_aliases,
    quick_run_training,
    screenshot,
    training_runs_since,
    watched_page,
)
from tests.support.models import CHAMPION_MODEL
from tests.support.prefect_stack import PrefectStack

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_quick_run_of_the_training_deployment_completes_and_mlflow_has_its_run(
    prefect_stack: PrefectStack, mlflow_server: str
) -> None:
    prefect_url = prefect_stack.api_url.removesuffix("/api")
    clicked = time.time()
    with chromium() as browser, watched_page(browser) as (page, watch):
        state, seconds = quick_run_training(page, watch, prefect_url, timeout=300)
        screenshot(page, "local", "prefect-run")
        watch.check()
    assert state == "Completed", prefect_stack.worker_log.read_text()[-3000:]
    runs = training_runs_since(mlflow_server, clicked)
    assert [run["info"]["status"] for run in runs] == ["FINISHED"], runs
    print(f"quick run completed {seconds:.0f} s after the click")


def test_the_mlflow_ui_shows_the_champion_alias_on_the_bootstrap_version(
    prefect_stack: PrefectStack, mlflow_server: str
) -> None:
    version = prefect_stack.bootstrap["champion_version"]
    with chromium() as browser, watched_page(browser) as (page, watch):
        row = mlflow_aliases(page, mlflow_server, CHAMPION_MODEL, version)
        screenshot(page, "local", "mlflow-model")
        watch.check()
    assert "@\xa0champion" in row, row  # MLflow joins the "@" and the alias with a no-break space
