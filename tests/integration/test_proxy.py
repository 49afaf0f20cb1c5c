"""The scale-out stack's nginx (deploy/nginx.conf as deploy/nginx-start.sh renders it) on loopback, in front of
the real app under gunicorn, over HTTPS as in the stack (throwaway certificates; the clients trust their CA
only): the throttle per client address, what a throttled client reads, the request ids passed through, the
body limit, and X-Served-By only when asked for.

Two client addresses on one machine: Linux answers all of 127.0.0.0/8 on loopback, so a client bound to
127.0.0.2 is another address to nginx's ``$binary_remote_addr`` (TLS changes nothing there: the client's
socket is bound before the handshake).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import requests

from tests.support.app import Served
from tests.support.load import RECORD
from tests.support.predlog import logged
from tests.support.proxy import client_at, loopback_proxy

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:X does not have valid feature names")]

# A slow rate, so that a flood of ordinary requests outruns it whatever the machine's speed: each request of
# the flood takes milliseconds, and the burst is spent long before a second has passed.
THROTTLE = {"HEARTRISK_RATE_LIMIT": "1", "HEARTRISK_RATE_BURST": "5"}
HSTS = "max-age=63072000"  # every HTTPS answer of the stack's nginx, nginx's own pages too
CAP = 300  # requests a flood sends at most before the test gives up on seeing a 429


def flood(session: requests.Session, method: str, url: str, **kwargs) -> tuple[list[requests.Response], list[str]]:
    """Requests back to back, each with its own X-Request-ID, until one is throttled (or ``CAP`` were sent); the
    answers and the ids sent."""
    answers, ids = [], []
    while len(answers) < CAP and (not answers or answers[-1].status_code != 429):
        ids.append(uuid.uuid4().hex)
        answers.append(session.request(method, url, headers={"X-Request-ID": ids[-1]}, timeout=30, **kwargs))
    return answers, ids


def test_a_flood_from_one_address_gets_429_as_json_while_another_address_is_served(
    served: Served, tmp_path: Path
) -> None:
    with loopback_proxy(tmp_path, served.app.url, THROTTLE) as proxy, client_at("127.0.0.1", proxy.ca) as one:
        answers, ids = flood(one, "POST", proxy.url(8443, "/api/v1/predict"), json=RECORD)
        throttled = answers[-1]
        assert throttled.status_code == 429, [a.status_code for a in answers[-5:]]
        assert {a.status_code for a in answers[:-1]} == {200}  # the burst was served first
        assert throttled.headers["Content-Type"] == "application/json" and throttled.headers["Retry-After"] == "1"
        assert throttled.headers["Strict-Transport-Security"] == HSTS  # its location has add_headers of its own
        assert list(throttled.json()) == ["error"] and "Too many requests" in throttled.json()["error"]

        with client_at("127.0.0.2", proxy.ca) as other:
            answer = other.post(proxy.url(8443, "/api/v1/predict"), json=RECORD, timeout=30)
        assert answer.status_code == 200 and answer.json()["model_version"] == served.version
        assert one.get(proxy.url(8443, "/healthz"), timeout=30).status_code == 200  # liveness is never throttled

    # Only what was answered 200 reached the app: one row each, keyed by the id the app answered, the client's
    # id kept beside it as sent (nginx passes the header on and invents none).
    rows = logged(served.app.log)
    ours = rows[rows["client_request_id"].isin(ids)]
    answered = {a.headers["X-Request-ID"]: sent for a, sent in zip(answers, ids, strict=True) if a.status_code == 200}
    assert dict(zip(ours["request_id"], ours["client_request_id"], strict=True)) == answered
    assert len(ours) == len(answered)


def test_a_person_at_the_form_gets_a_short_page_when_throttled(served: Served, tmp_path: Path) -> None:
    form = {name: str(value) for name, value in RECORD.items()}
    with loopback_proxy(tmp_path, served.app.url, THROTTLE) as proxy, client_at("127.0.0.3", proxy.ca) as person:
        person.headers["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"  # a browser's
        answers, _ = flood(person, "POST", proxy.url(8443), data=form)
    throttled = answers[-1]
    assert throttled.status_code == 429 and throttled.headers["Content-Type"] == "text/html"
    assert "<h1>Too many requests</h1>" in throttled.text and "submit the form again" in throttled.text
    assert throttled.headers["Retry-After"] == "1" and throttled.headers["Strict-Transport-Security"] == HSTS
    assert 'id="model-version"' in answers[0].text  # before the throttle, the form's answer


@pytest.mark.parametrize(("setting", "named"), [(None, False), ("off", False), ("on", True)])
def test_answers_name_the_replica_only_when_the_setting_says_so(
    served: Served, tmp_path: Path, setting: str | None, named: bool
) -> None:
    env = {} if setting is None else {"HEARTRISK_PROXY_SERVED_BY": setting}
    with loopback_proxy(tmp_path, served.app.url, env) as proxy, client_at("127.0.0.4", proxy.ca) as client:
        answer = client.post(proxy.url(8443, "/api/v1/predict"), json=RECORD, timeout=30)
    assert answer.status_code == 200
    upstream = served.app.url.removeprefix("http://")
    assert answer.headers.get("X-Served-By") == (upstream if named else None)


def test_large_requests_have_a_slower_rate_of_their_own(served: Served, tmp_path: Path) -> None:
    """One request may carry thousands of records: bodies of 100 000 bytes or more are also counted per minute,
    while the same address's small requests go on being served."""
    batch = [RECORD] * 1000  # about 160 000 bytes of JSON
    env = {"HEARTRISK_BATCH_RATE_LIMIT": "1", "HEARTRISK_BATCH_BURST": "1"}
    with loopback_proxy(tmp_path, served.app.url, env) as proxy, client_at("127.0.0.5", proxy.ca) as client:
        answers = [client.post(proxy.url(8443, "/api/v1/predict"), json=batch, timeout=60) for _ in range(3)]
        single = client.post(proxy.url(8443, "/api/v1/predict"), json=RECORD, timeout=30)
    assert [a.status_code for a in answers] == [200, 200, 429]  # the burst of 1 over the rate, then refused
    assert len(answers[0].json()) == len(batch)
    assert answers[2].headers["Retry-After"] == "60" and "Try again in 60 s" in answers[2].json()["error"]
    assert single.status_code == 200


def test_a_body_over_the_apps_limit_is_refused_by_nginx_in_the_apps_json_shape(served: Served, tmp_path: Path) -> None:
    """The app's own limit (HEARTRISK_MAX_REQUEST_BYTES) is nginx's too: refused before any replica, with the
    same JSON error as the app's (an nginx location with error pages of its own inherits none of the server's)."""
    env = {"HEARTRISK_MAX_REQUEST_BYTES": "1000"}
    with loopback_proxy(tmp_path, served.app.url, env) as proxy, client_at("127.0.0.6", proxy.ca) as client:
        api = proxy.url(8443, "/api/v1/predict")
        refused = client.post(api, data=b" " * 1001, headers={"content-type": "application/json"}, timeout=30)
        small = client.post(api, json=RECORD, timeout=30)
    assert refused.status_code == 413
    assert refused.json() == {"error": "The request body is larger than 1000 bytes."}
    assert small.status_code == 200


def test_the_open_inference_protocol_is_routed_and_throttled_as_the_api(served: Served, tmp_path: Path) -> None:
    """/v2 goes to the app through nginx; a flood of it from one address gets the 429 in the protocol's own error
    shape (the same {"error": ...} as /api), and the V2 liveness probe, like /healthz, is never throttled."""
    tensor = {"name": "input-0", "shape": [1, len(RECORD)], "datatype": "FP32", "data": list(RECORD.values())}
    with loopback_proxy(tmp_path, served.app.url, THROTTLE) as proxy, client_at("127.0.0.7", proxy.ca) as client:
        infer = proxy.url(8443, "/v2/models/heartrisk/infer")
        answers, _ = flood(client, "POST", infer, json={"inputs": [tensor]})
        live = client.get(proxy.url(8443, "/v2/health/live"), timeout=30)
    throttled = answers[-1]
    assert {a.status_code for a in answers[:-1]} == {200} and len(answers) > 1
    assert answers[0].json()["model_version"] == served.version
    assert throttled.status_code == 429 and throttled.headers["Content-Type"] == "application/json"
    assert list(throttled.json()) == ["error"] and throttled.headers["Retry-After"] == "1"
    assert throttled.headers["Strict-Transport-Security"] == HSTS
    assert live.status_code == 200 and live.json() == {"live": True}
