"""The scale-out stack as a security reviewer tries it (issue 33): run by tests/stack/run.sh scale and by
`make security-test`, on the stack that tests/support/scale_stack.py starts (one stack for both: the ``stack``
fixture of tests/stack/conftest.py lives for the whole session), after the scale checks.

What it proves, each as its own test: every published port speaks TLS with a certificate of the stack's CA
(certifi's public CAs do not verify it), plain HTTP is only ever redirected to HTTPS, and PostgreSQL refuses a
connection without TLS from inside the stack's network; a page on another site cannot change Prefect or MLflow
through the proxy, while the same request from their own (https) origin is accepted; a model version
registered with a valid MLflow login but without the signing key (a pickle that would write a file when loaded)
is refused by every app replica and by the monitor, the file is never written, and the previous champion keeps
answering; a flood from one client address gets 429 while a second address is still served.

This process trusts the stack's CA only (the fixture sets REQUESTS_CA_BUNDLE, which MLflow's client reads too);
the containers trust it as the stack's clients do, from the compose secret at /run/secrets/tls-ca.

Not named test_*.py on purpose: plain `pytest` (make test) does not collect it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import certifi
import pytest
import requests
from mlflow.tracking import MlflowClient

from heartrisk.names import MODEL, MONITOR_DEPLOYMENT, MONITOR_FLOW
from heartrisk.serving.flow_runs import csrf_headers
from tests.stack.scale_check import in_the_app, queue_run, wait_healthy, wait_run
from tests.support import intruder
from tests.support.docker import docker
from tests.support.load import RECORD, wait_for
from tests.support.scale_stack import POLL_SECONDS, PROXY_THROTTLE, Stack

EVIL = "http://evil.example"
MARKER = Path("/tmp/heartrisk-intruder-was-here")  # what the intruder's pickle writes wherever it is loaded
CA_INSIDE = "/run/secrets/tls-ca"  # the stack's CA in its client containers (the compose secret tls-ca)
# The form and API from inside the stack's network: nginx's HTTPS port under the name in its certificate. Its port
# 8000 only redirects, to the host's published HTTPS port, which a container cannot reach.
APP_INSIDE = "https://proxy:8443"


def test_tls_verifies_against_the_stacks_ca_http_is_redirected_and_postgresql_refuses_plain(stack: Stack) -> None:
    """Every published port speaks TLS with the stack's certificate; plain HTTP on the app's port is sent to the
    form's HTTPS port (Strict-Transport-Security on the answers); PostgreSQL refuses a connection without TLS
    from inside the network, and the app's own (verify-full, the CA) is encrypted."""
    plain = f"http://127.0.0.1:{stack.env['HEARTRISK_APP_PORT']}"
    moved = requests.get(f"{plain}/about?x=1", allow_redirects=False, timeout=30)
    assert (moved.status_code, moved.headers["Location"]) == (301, f"{stack.url('app')}/about?x=1")
    for name in ("app", "mlflow", "prefect", "evidently", "prometheus", "alertmanager"):
        answer = requests.get(f"{stack.url(name)}/", timeout=30)  # verified against REQUESTS_CA_BUNDLE: the CA
        assert answer.headers.get("Strict-Transport-Security") == "max-age=63072000", name
        refused = requests.get(stack.url(name).replace("https://", "http://"), allow_redirects=False, timeout=30)
        assert (refused.status_code, refused.headers["Location"]) == (301, f"{stack.url(name)}/"), name
    with pytest.raises(requests.exceptions.SSLError):  # requests' own CA bundle does not know the stack's CA
        requests.get(f"{stack.url('app')}/", timeout=30, verify=certifi.where())

    probe = (
        "import os, psycopg\n"
        "url = os.environ['HEARTRISK_PREDICTIONS_DB']\n"
        "with psycopg.connect(url) as conn:\n"
        "    print(conn.execute('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()').fetchone()[0])\n"
        "psycopg.connect(url, sslmode='disable', connect_timeout=5)\n"
    )
    done = stack.compose("exec", "-T", "app", "python3", "-c", probe)
    assert done.stdout.strip() == "True", done.stdout + done.stderr
    assert done.returncode != 0 and "no encryption" in done.stderr, done.stderr[-2000:]


def test_a_page_on_another_site_cannot_change_prefect_or_mlflow_through_the_proxy(stack: Stack) -> None:
    """With the admin's credential (a browser that has it saved would send it), a request carrying another
    site's Origin is refused; the same request from the UI's own origin is accepted."""
    api, own = f"{stack.url('prefect')}/api", stack.url("prefect")
    ask = {"Origin": EVIL, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    preflight = requests.options(f"{api}/flows/filter", headers=ask, timeout=30)
    assert preflight.status_code == 400 and "access-control-allow-origin" not in preflight.headers
    posted = requests.post(f"{api}/flows/filter", json={}, auth=stack.admin, headers={"Origin": EVIL}, timeout=30)
    assert posted.status_code == 403, posted.text  # no CSRF token: the page cannot read one (no CORS answer)
    token = requests.get(f"{api}/csrf-token", params={"client": "page"}, headers={"Origin": EVIL}, timeout=30)
    assert "access-control-allow-origin" not in token.headers
    headers = {"Origin": own, **csrf_headers(api, 30, stack.admin)}
    accepted = requests.post(f"{api}/flows/filter", json={}, auth=stack.admin, headers=headers, timeout=30)
    assert accepted.status_code == 200 and accepted.headers.get("access-control-allow-origin") == own

    create = f"{stack.url('mlflow')}/api/2.0/mlflow/experiments/create"
    refused = requests.post(create, json={"name": "from-evil"}, auth=stack.admin, headers={"Origin": EVIL}, timeout=30)
    assert refused.status_code == 403, refused.text
    mine = {"Origin": stack.url("mlflow")}
    created = requests.post(create, json={"name": "from-its-own-ui"}, auth=stack.admin, headers=mine, timeout=30)
    assert created.status_code == 200, created.text
    found = requests.get(
        f"{stack.url('mlflow')}/api/2.0/mlflow/experiments/get-by-name",
        params={"experiment_name": "from-evil"},
        auth=stack.admin,
        timeout=30,
    )
    assert found.status_code == 404, found.text


def details(stack: Stack, container: str) -> dict:
    """The detailed /readyz of one app replica, from its internal port (asked from inside the container)."""
    return json.loads(in_the_app(stack, "/readyz", container))


@contextmanager
def as_admin(stack: Stack) -> Iterator[None]:
    """MLflow's client in this process logs in as the admin: a valid login, and no signing key."""
    os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = stack.admin
    try:
        yield
    finally:
        del os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]


def test_a_version_registered_without_the_signing_key_is_refused_everywhere_and_never_loaded(stack: Stack) -> None:
    """An intruder with the admin's MLflow login registers a pickle that writes a file when it is loaded and
    moves the champion alias to it. Every replica refuses it (unsigned) and keeps answering with the previous
    champion, the monitor's run fails naming the reason, and no container ever wrote the file."""
    mlflow = stack.url("mlflow")
    with as_admin(stack):
        client = MlflowClient(tracking_uri=mlflow)
        previous = client.get_model_version_by_alias(MODEL, "champion").version
        version = intruder.register_pickle(mlflow, MODEL, MARKER)
    try:
        replicas = stack.containers("app")
        wait_for(
            lambda: all((details(stack, c).get("refused") or {}).get("version") == version for c in replicas),
            timeout=3 * POLL_SECONDS + 30,
            what=f"every replica refusing version {version}",
            every=3,
        )
        for container in replicas:
            seen = details(stack, container)
            assert (seen["model_version"], seen["refused"]["kind"]) == (previous, "unsigned"), seen
        answers = [requests.post(f"{stack.url('app')}/api/v1/predict", json=RECORD, timeout=30) for _ in range(12)]
        assert {(a.status_code, str(a.json()["model_version"])) for a in answers} == {(200, previous)}

        run = queue_run(stack, MONITOR_FLOW, MONITOR_DEPLOYMENT, parameters={"retrain": False})
        state, _ = wait_run(stack, run, timeout=600)
        assert state == "FAILED"
        logs = stack.prefect("POST", "/logs/filter", json={"logs": {"flow_run_id": {"any_": [run]}}, "limit": 200})
        assert any("unsigned" in log["message"] for log in logs), [log["message"] for log in logs][-10:]

        for service in ("app", "worker", "mlflow"):
            for container in stack.containers(service):
                assert docker("exec", container, "test", "-e", str(MARKER)).returncode == 1, (service, container)
    finally:
        with as_admin(stack):
            MlflowClient(tracking_uri=mlflow).set_registered_model_alias(MODEL, "champion", previous)


FLOOD = """
import json, sys, requests
from concurrent.futures import ThreadPoolExecutor
url, count, record, ca = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
with ThreadPoolExecutor(8) as pool:
    answers = list(pool.map(lambda _: requests.post(url, json=record, timeout=30, verify=ca), range(count)))
print(json.dumps([[a.status_code, a.headers.get("Retry-After"), a.text[:200]] for a in answers]))
"""


def post_from(stack: Stack, service: str, count: int) -> list[list]:
    """``count`` predictions sent back to back from inside a container of ``service``: its own address, as
    nginx sees it (clients on the host all arrive through Docker's port proxy, from one address). Over HTTPS,
    verified against the stack's CA as the container has it."""
    url = f"{APP_INSIDE}/api/v1/predict"
    flood = ("python3", "-c", FLOOD, url, str(count), json.dumps(RECORD), CA_INSIDE)
    done = stack.compose("exec", "-T", service, *flood)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_a_flood_from_one_address_gets_429_while_another_address_is_served(stack: Stack) -> None:
    """The proxy with its default throttle (the scale checks ran it raised): the worker's container floods,
    the bootstrap's container, another address, is served meanwhile."""
    defaults = {k: v for k, v in stack.env.items() if k not in PROXY_THROTTLE}
    recreate = ("up", "--detach", "--no-deps", "--force-recreate", "proxy")
    assert stack.compose_with(defaults, *recreate).returncode == 0
    try:
        wait_healthy(stack.containers("proxy")[0], timeout=60)
        flood = post_from(stack, "worker", 120)  # 8 at a time: far more than 10 a second
        codes = [code for code, _, _ in flood]
        assert set(codes) == {200, 429} and codes.count(200) >= 20, codes  # the burst of 20 served, then refused
        refused = next(answer for answer in flood if answer[0] == 429)
        assert refused[1] is not None and json.loads(refused[2])["error"].startswith("Too many requests")
        other = post_from(stack, "bootstrap", 3)
        assert [code for code, _, _ in other] == [200, 200, 200]
    finally:
        assert stack.compose(*recreate).returncode == 0
        wait_healthy(stack.containers("proxy")[0], timeout=60)
        time.sleep(1)


@pytest.fixture(autouse=True)
def _name_of_the_part(request: pytest.FixtureRequest, capsys: pytest.CaptureFixture) -> Iterator[None]:
    """Each check's time, printed: the security part shares the scale test's stack and its CI minutes."""
    started = time.monotonic()
    yield
    with capsys.disabled():
        print(f"\n[security] {request.node.name}: {time.monotonic() - started:.0f} s", file=sys.stderr)
