"""Security headers on every answer; cross-site form posts refused by the browser's own signals."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from heartrisk.serving.security import cross_site_reason

pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


def directives(policy: str) -> dict[str, str]:
    """A Content-Security-Policy header as {directive: sources}."""
    parts = (part.strip().split(None, 1) for part in policy.split(";") if part.strip())
    return {part[0]: part[1] if len(part) > 1 else "" for part in parts}


def test_security_headers_on_pages_api_and_errors(client: FlaskClient, record: dict[str, Any]) -> None:
    for response in (client.get("/"), client.post("/api/v1/predict", json=record), client.get("/nowhere")):
        policy = directives(response.headers["Content-Security-Policy"])
        assert policy["default-src"] == "'none'"  # so no script may run: there is no script-src to widen it
        assert "script-src" not in policy and "script-src-elem" not in policy
        assert policy["frame-ancestors"] == "'none'"
        assert policy["form-action"] == "'self'"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"  # health data must not be cached
    css = client.get("/static/style.css")
    assert css.status_code == 200
    assert "no-store" not in css.headers.get("Cache-Control", "")
    css.close()


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ({}, False),
        ({"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"}, False),
        ({"Sec-Fetch-Site": "none"}, False),
        ({"Sec-Fetch-Site": "cross-site"}, True),
        ({"Sec-Fetch-Site": "same-site"}, True),
        ({"Origin": "https://evil.example"}, True),
        ({"Origin": "null"}, True),
        ({"Origin": "http://localhost:8000"}, True),  # another port is another origin
    ],
)
def test_cross_site_signals(app: Flask, headers: dict[str, str], refused: bool) -> None:
    with app.test_request_context("/", method="POST", headers=headers, base_url="http://localhost"):
        from flask import request

        assert (cross_site_reason(request) is not None) is refused


def test_a_header_a_view_set_itself_is_kept() -> None:
    from flask import Response

    from heartrisk.serving.security import HEADERS, add_headers

    response = add_headers(Response("x", headers={"x-frame-options": "SAMEORIGIN"}), static=False)
    assert response.headers.getlist("X-Frame-Options") == ["SAMEORIGIN"]
    assert all(response.headers.getlist(name) for name in HEADERS)
    assert response.headers["Cache-Control"] == "no-store"
