"""A real browser for the tests, and what a person does in each of HeartRisk's UIs.

Playwright drives Debian's chromium (``executable_path``; Playwright's own browser download cannot work
here). Every page is watched: a JavaScript exception, a 4xx/5xx answer from the stack, or a request to any
host but the stack's loopback addresses (nothing calls out; such a request is aborted) is a problem, and
:meth:`Watch.check` fails the test with the list. The same steps serve the local layout (tests/browser),
`make stack-test` and `make scale-test` (tests/stack), so a UI that answers 404 fails all three.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import requests

from heartrisk.dashboard import panels
from heartrisk.names import CHAMPION_ALIAS, EVIDENTLY_PROJECT, MODEL, TRAIN_DEPLOYMENT, TRAIN_EXPERIMENT
from heartrisk.schema import FEATURES
from heartrisk.tracking import TRAINING_TAG
from tests.support.paths import ROOT
from tests.support.servers import require
from tests.support.tls import trusting_home

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Request, Response, Route

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Screenshots of every run, for a person to look at (git-ignored); `make screenshots` copies the local
# layout's into docs/ for the README.
SCREENSHOTS = ROOT / "test-results" / "screenshots"
# What the Prometheus step shows: the form's and the API's answers per second by status, over 5-minute windows
# (a series is then never a lone point, which the classic UI's chart library cannot draw); the scale test's
# PostgreSQL outage is the band of 503s.
PROMETHEUS_GRAPH = 'sum by (status) (rate(heartrisk_http_requests_total{endpoint=~"/|/api/v1/predict"}[5m]))'
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# Answers that are part of a UI's normal work, not a fault: (status, path pattern, why).
EXPECTED = (
    (404, r"/ajax-api/2\.0/mlflow/users/current$", "MLflow's UI asks who is logged in; without its auth app "
     "(local mode, plain compose) that endpoint does not exist and the UI carries on without a user"),
    (404, r"/ico/undefined\.svg$", "Prefect 3.9.1's V1 run page asks for an icon named 'undefined' (upstream, "
     "cosmetic: a static file, not an API answer)"),
)  # fmt: skip


@dataclass
class Watch:
    """What a page did that a person would call broken, recorded as it happens."""

    problems: list[str] = field(default_factory=list)

    def route(self, route: Route) -> None:
        """Let requests to the stack through; abort and record any other (a UI calling out)."""
        if urlsplit(route.request.url).hostname in LOOPBACK or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.problems.append(f"called out: {route.request.method} {route.request.url}")
            route.abort()

    def response(self, response: Response) -> None:
        if response.status < 400:
            return
        path = urlsplit(response.url).path
        if any(status == response.status and re.search(pattern, path) for status, pattern, _ in EXPECTED):
            return
        self.problems.append(f"{response.status} {response.request.method} {response.url}")

    def failed(self, request: Request) -> None:
        failure = request.failure or ""
        if "ERR_ABORTED" not in failure and urlsplit(request.url).hostname in LOOPBACK:  # navigation cancels
            self.problems.append(f"failed: {request.method} {request.url} ({failure})")

    def forgive_before_login(self) -> None:
        """Drop what a UI with a login page did before it had the credential: its requests answered 401,
        and (Prefect 3.9.1's V1 UI, with an auth string and CSRF protection) the request for a CSRF token
        that it leaves unhandled when it is refused (an AxiosError). Everything after the login counts."""
        self.problems = [p for p in self.problems if not p.startswith(("401 ", "JavaScript AxiosError "))]

    def forgive_debians_popper(self) -> None:
        """Drop the one error of Prometheus's classic UI as Debian packages it: its popper.min.js is an ES
        module (``export default``) loaded as a plain script, so it fails to parse. Only Bootstrap's dropdown
        menus use it (the Status menu); the graph page draws without it."""
        self.problems = [p for p in self.problems if not p.startswith("JavaScript SyntaxError") or "'export'" not in p]

    def check(self) -> None:
        assert not self.problems, "the page went wrong:\n" + "\n".join(self.problems)


@contextmanager
def chromium(ca: str | None = None) -> Iterator[Browser]:
    """Debian's chromium under Playwright; skipped on a laptop without it, a failure in CI. ``ca``: a CA the
    browser trusts as a person's does after importing it (an NSS database in a home of its own), for a stack
    served over HTTPS; certificate errors stay errors."""
    require(CHROMIUM.exists(), "Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="heartrisk-browser-home-") as home, sync_playwright() as p:
        env = {**os.environ, "HOME": str(trusting_home(Path(home), ca))} if ca else None
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, env=env)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def watched_page(
    browser: Browser, *, basic_auth: tuple[str, str] | None = None, javascript: bool = True
) -> Iterator[tuple[Page, Watch]]:
    """A fresh browser context (no cookies, no saved logins) and its page, watched. ``basic_auth`` answers
    an HTTP login prompt (MLflow's, nginx's) as a person typing it into the browser's dialog does."""
    credentials = {"username": basic_auth[0], "password": basic_auth[1]} if basic_auth else None
    context = browser.new_context(
        viewport={"width": 1300, "height": 900},
        http_credentials=credentials,
        java_script_enabled=javascript,
        reduced_motion="reduce",  # charts drawn at once: what a screenshot shows is what a person reads
        timezone_id="UTC",  # the times the UIs print, as the stack's APIs give them, on any laptop
    )
    watch = Watch()
    context.route("**/*", watch.route)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.on(
        "pageerror",
        lambda error: watch.problems.append(f"JavaScript {error.name} at {page.url}: {error.message} {error.stack}"),
    )
    page.on("response", watch.response)
    page.on("requestfailed", watch.failed)
    try:
        yield page, watch
    finally:
        context.close()


def screenshot(page: Page, layout: str, name: str) -> Path:
    """Keep what the page shows now as ``test-results/screenshots/<layout>/<name>.png``."""
    path = SCREENSHOTS / layout / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000, path  # a blank page is a few kB
    return path


def accessibility_violations(page: Page) -> list[str]:
    """What axe-core (4.12, bundled by the PyPI package axe-playwright-python) finds wrong on the page as it is now:
    one line per violation, its rule, impact and first element. It is injected through Playwright's own channel,
    which a CSP without any script source does not block; the page's context must run scripts (in one that does
    not, Playwright's evaluate never returns)."""
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    return [f"{v['id']} ({v['impact']}): {v['help']} at {v['nodes'][0]['target']}" for v in found]


def open_ui(page: Page, url: str) -> None:
    """Go to ``url`` as a person typing it; a UI that answers with an error fails here, saying so."""
    response = page.goto(url)
    assert response is not None and response.ok, f"{url} answered {response and response.status}"


def fill_form(page: Page, values: dict[str, Any]) -> None:
    """Enter every value the way a person does: type numbers, pick options by their label."""
    for feature in FEATURES:
        if feature.codes is not None:
            page.select_option(f"#{feature.name}", label=feature.codes[int(values[feature.name])])
        else:
            page.fill(f"#{feature.name}", str(values[feature.name]))


def form_answer(page: Page, app_url: str, values: dict[str, Any]) -> tuple[str, str]:
    """Submit the form with ``values``; the percentage shown and the model version named under it."""
    open_ui(page, app_url + "/")
    fill_form(page, values)
    page.click("button[type=submit]")
    page.wait_for_selector("#probability")
    return page.inner_text("#probability").replace("\xa0", " "), page.inner_text("#model-version")


def prefect_login(page: Page, watch: Watch, auth_string: str) -> None:
    """Prefect's login page asks for its auth string (``user:password``) in one field."""
    field = page.get_by_placeholder("admin:pass")
    field.wait_for()
    page.wait_for_load_state("networkidle")  # what the UI asks without a credential has been answered
    field.fill(auth_string)
    page.get_by_role("button", name="Login", exact=True).click()
    field.wait_for(state="detached")
    watch.forgive_before_login()


def quick_run_training(page: Page, watch: Watch, prefect_url: str, *, auth_string: str | None = None,
                       timeout: float = 900) -> tuple[str, float]:  # fmt: skip
    """Deployments, the training deployment, Run, Quick run, then the run's page until its state is final.

    Returns the run's state as the page shows it and the seconds from the click to that state.
    """
    open_ui(page, prefect_url + "/")  # the address a person is given; the server picks the UI it serves
    if auth_string is not None:
        prefect_login(page, watch, auth_string)
    page.get_by_role("button", name="Deployments", exact=True).click()  # the V1 side bar's entries are buttons
    page.get_by_role("link", name=TRAIN_DEPLOYMENT, exact=True).click()
    page.get_by_role("button", name="Run", exact=True).click()
    clicked = time.monotonic()
    page.get_by_text("Quick run", exact=True).click()
    # The toast names the new run; its link appears in the deployment's runs (the toast's own button can
    # sit under a second copy of the toast).
    toast = page.get_by_text("scheduled to start").first.inner_text()
    run_name = toast.split(" scheduled")[0].strip()
    page.get_by_role("link", name=run_name, exact=True).first.click()
    page.wait_for_url(re.compile(r".*/runs/flow-run/[0-9a-f-]+"))
    badge = page.locator(".state-badge").first
    final = re.compile(r"Completed|Failed|Crashed|Cancelled")
    while not final.search(badge.inner_text()):  # the page updates itself; a person watches it
        assert time.monotonic() - clicked < timeout, f"run {run_name} still {badge.inner_text()} after {timeout} s"
        page.wait_for_timeout(1000)
    return badge.inner_text().strip(), time.monotonic() - clicked


def mlflow_aliases(page: Page, mlflow_url: str, model: str, version: str) -> str:
    """The registered model's page in the MLflow UI: the aliases shown on ``version``'s row."""
    open_ui(page, f"{mlflow_url}/#/models/{model}")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=f"Version {version}", exact=True))
    row.wait_for()
    return row.inner_text()


def evidently_dashboard(page: Page, evidently_url: str, project: str) -> str:
    """The Evidently UI: the project list, the monitoring project, its dashboard's text once drawn."""
    open_ui(page, evidently_url + "/")
    page.get_by_role("link", name=project, exact=True).click()
    page.get_by_text("Share of drifted input columns").first.wait_for()
    page.locator("svg .MuiMarkElement-root").first.wait_for()  # a plotted point: the panels have data
    page.wait_for_load_state("networkidle")  # every panel's data
    return page.inner_text("body")


def prometheus_graph(page: Page, prometheus_url: str, expr: str, minutes: int = 30) -> str:
    """Prometheus's graph page of ``expr`` over the last ``minutes``, as an operator opens it; its legend."""
    query = urlencode({"g0.expr": expr, "g0.tab": "0", "g0.range_input": f"{minutes}m"})
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    open_ui(page, f"{prometheus_url}/classic/graph?{query}")
    drawn = page.locator(".graph_area svg path.path")
    try:  # attached, not "visible": a flat line (a steady rate) has no height, which Playwright calls invisible
        drawn.first.wait_for(state="attached", timeout=30_000)
    except PlaywrightTimeoutError:
        shown = page.locator("body").inner_text()[:1500]
        raise AssertionError(f"Prometheus drew no series of {expr}: {shown}") from None
    return page.locator(".legend").first.inner_text()


def training_runs_since(mlflow_url: str, since: float, auth: tuple[str, str] | None = None) -> list[dict]:
    """The training runs (parent runs, not trials) MLflow holds that started at or after ``since`` (epoch s)."""
    api = f"{mlflow_url}/api/2.0/mlflow"
    found = requests.get(f"{api}/experiments/get-by-name", params={"experiment_name": TRAIN_EXPERIMENT}, auth=auth,
                         timeout=30)  # fmt: skip
    found.raise_for_status()
    kind = f"tags.`heartrisk.kind` = '{TRAINING_TAG['heartrisk.kind']}'"
    query = {"experiment_ids": [found.json()["experiment"]["experiment_id"]],
             "filter": f"{kind} and attributes.start_time >= {int(since * 1000)}"}  # fmt: skip
    runs = requests.post(f"{api}/runs/search", json=query, auth=auth, timeout=30)
    runs.raise_for_status()
    return runs.json().get("runs", [])


def champion_version(mlflow_url: str, auth: tuple[str, str] | None = None) -> str:
    """The version the registry's ``champion`` alias names, from MLflow's REST API."""
    answer = requests.get(
        f"{mlflow_url}/api/2.0/mlflow/registered-models/alias",
        params={"name": MODEL, "alias": CHAMPION_ALIAS},
        auth=auth,
        timeout=30,
    )
    answer.raise_for_status()
    return answer.json()["model_version"]["version"]


def last_snapshot_time(evidently_url: str, auth: tuple[str, str] | None = None) -> str:
    """When the newest monitoring run of the Evidently project was taken, as the dashboard's axis writes it."""
    projects = requests.get(f"{evidently_url}/api/projects", auth=auth, timeout=30)
    projects.raise_for_status()
    project = next(p["id"] for p in projects.json() if p["name"] == EVIDENTLY_PROJECT)
    snapshots = requests.get(f"{evidently_url}/api/projects/{project}/snapshots", auth=auth, timeout=30)
    snapshots.raise_for_status()
    newest = max(s["timestamp"] for s in snapshots.json())
    return newest[:19].replace("T", " ")


def every_ui(
    layout: str,
    urls: dict[str, str],
    record: dict[str, Any],
    admin: tuple[str, str] | None = None,
    ca: str | None = None,
) -> None:
    """What each user of a running stack opens, in turn: the form, the MLflow model page, the Evidently
    dashboard, and a Quick run of training in the Prefect UI; with the stack's logins when ``admin`` is set
    (HTTP basic auth for MLflow and the Evidently UI, Prefect's login page for its auth string).

    ``urls`` maps app, mlflow, prefect and evidently (and, when the layout has it, prometheus) to their published
    addresses; ``ca``: the CA of a stack served over HTTPS, which the browser then trusts. The form comes first:
    a Quick run may promote a new champion, which the app follows only at its next poll.
    """
    champion = champion_version(urls["mlflow"], admin)
    with chromium(ca) as browser:
        started = time.monotonic()
        with watched_page(browser, javascript=False) as (page, watch):
            percentage, version = form_answer(page, urls["app"], record)
            screenshot(page, layout, "form")
            watch.check()
        assert re.fullmatch(r"\d{1,3}\.\d %", percentage) and version == champion, (percentage, version, champion)
        print(f"[{layout}] form: {percentage} from version {version} ({time.monotonic() - started:.1f} s)")

        started = time.monotonic()
        with watched_page(browser, basic_auth=admin) as (page, watch):
            row = mlflow_aliases(page, urls["mlflow"], MODEL, champion)
            screenshot(page, layout, "mlflow-model")
            watch.check()
        assert f"@\xa0{CHAMPION_ALIAS}" in row, row  # MLflow joins the "@" and the alias with a no-break space
        print(f"[{layout}] MLflow UI: version {champion} shows @{CHAMPION_ALIAS} ({time.monotonic() - started:.1f} s)")

        started = time.monotonic()
        taken = last_snapshot_time(urls["evidently"], admin)
        with watched_page(browser, basic_auth=admin) as (page, watch):
            board = evidently_dashboard(page, urls["evidently"], EVIDENTLY_PROJECT)
            screenshot(page, layout, "evidently-dashboard")
            watch.check()
        missing = [panel.title for panel in panels() if panel.title not in board]
        assert missing == [] and taken in board, (missing, taken)
        print(f"[{layout}] Evidently UI: {len(panels())} panels, last run {taken} ({time.monotonic() - started:.1f} s)")

        if "prometheus" in urls:  # the operators' view: answers by status over the test's half hour
            started = time.monotonic()
            with watched_page(browser, basic_auth=admin) as (page, watch):
                try:
                    legend = prometheus_graph(page, urls["prometheus"], PROMETHEUS_GRAPH)
                except AssertionError as exc:  # what the page's scripts said, if they failed
                    raise AssertionError(f"{exc}\n{watch.problems}") from None
                screenshot(page, layout, "prometheus-graph")
                watch.forgive_debians_popper()
                watch.check()
            assert 'status="200"' in legend, legend
            print(
                f"[{layout}] Prometheus: {legend.count('status=')} series of answers"
                f" ({time.monotonic() - started:.1f} s)"
            )

        clicked = time.time()
        auth_string = f"{admin[0]}:{admin[1]}" if admin else None
        with watched_page(browser) as (page, watch):
            state, seconds = quick_run_training(page, watch, urls["prefect"], auth_string=auth_string)
            screenshot(page, layout, "prefect-run")
            watch.check()
        assert state == "Completed", state
        runs = training_runs_since(urls["mlflow"], clicked, admin)
        assert [run["info"]["status"] for run in runs] == ["FINISHED"], runs
        print(f"[{layout}] Prefect UI: Quick run {state} {seconds:.0f} s after the click; MLflow has its run")
