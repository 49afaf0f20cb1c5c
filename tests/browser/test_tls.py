"""A browser against the scale-out stack's HTTPS, as a person's is once they trusted the CA: Debian's chromium
with the CA in its NSS database (what `make scale-test` uses for every UI), before the loopback nginx of
tests/support/proxy.py with the certificates `heartrisk tls-certs` makes. Certificate errors are not ignored:
the same browser without the CA refuses the page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import chromium, watched_page
from tests.support.proxy import ADMIN, Proxy, loopback_proxy

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    with loopback_proxy(tmp_path_factory.mktemp("nginx-browser")) as running_proxy:
        yield running_proxy


def test_a_browser_trusting_the_ca_opens_the_stack_over_https_and_is_sent_there_from_http(proxy: Proxy) -> None:
    with chromium(ca=proxy.ca) as browser, watched_page(browser, basic_auth=ADMIN) as (page, _):
        answer = page.goto(proxy.url(8443, "/metrics"))  # nginx's own answer: the app's /metrics stays inside
        assert answer is not None and answer.status == 404
        assert answer.headers["strict-transport-security"] == "max-age=63072000"
        page.goto(proxy.url(8000, "/about?x=1", scheme="http"))
        assert page.url == proxy.url(8443, "/about?x=1")  # the redirect, then TLS the browser trusts
        page.goto(proxy.url(9090, "/graph", scheme="http"))  # Prometheus's port (no Prometheus behind: 502)
        assert page.url == proxy.url(9090, "/graph")  # plain HTTP on a TLS port is sent to HTTPS as well


def test_without_the_ca_the_browser_refuses_the_certificate(proxy: Proxy, tmp_path: Path) -> None:
    from playwright.sync_api import Error

    with chromium() as browser, watched_page(browser) as (page, _), pytest.raises(Error, match="ERR_CERT_AUTHORITY"):
        page.goto(proxy.url(8443, "/metrics"))
