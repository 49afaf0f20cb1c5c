"""nginx's TLS in the scale-out stack: deploy/nginx.conf as deploy/nginx-start.sh renders it, run whole by a
real nginx on loopback with throwaway certificates (tests/support/proxy.py): the certificate verifies against
the CA for the names people and services dial, plain HTTP is redirected to HTTPS, every HTTPS answer carries
Strict-Transport-Security, and TLS below 1.2 or a suite outside Mozilla's "intermediate" list gets no
connection."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

import pytest
import requests

from tests.support.proxy import Proxy, loopback_proxy

TLS_ONLY = (8443, 5000, 4200, 8001, 9090, 9093)
HSTS = "max-age=63072000"


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    with loopback_proxy(tmp_path_factory.mktemp("nginx-tls")) as running_proxy:
        yield running_proxy


def test_the_certificate_verifies_for_the_names_people_and_services_dial(proxy: Proxy) -> None:
    for host in ("127.0.0.1", "localhost"):
        answer = requests.get(proxy.url(8443, "/metrics", host=host), verify=proxy.ca, timeout=10)
        assert answer.status_code == 404  # the app's /metrics stays inside, over TLS too
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        requests.get(proxy.url(8443, "/metrics"), timeout=10)  # a CA nobody was told to trust


def test_plain_http_is_redirected_to_https_and_every_https_answer_has_hsts(proxy: Proxy) -> None:
    form = requests.get(proxy.url(8000, "/predict?x=1", scheme="http"), allow_redirects=False, timeout=10)
    assert (form.status_code, form.headers["Location"]) == (301, proxy.url(8443, "/predict?x=1"))
    for port in TLS_ONLY:  # a plain request on a TLS port: nginx's 497, answered with the https address
        plain = requests.get(proxy.url(port, "/a?b=c", scheme="http"), allow_redirects=False, timeout=10)
        assert (plain.status_code, plain.headers["Location"]) == (301, proxy.url(port, "/a?b=c")), port
    answers = [requests.get(proxy.url(8443, "/metrics"), verify=proxy.ca, timeout=10)]
    answers += [requests.get(proxy.url(port), verify=proxy.ca, timeout=10) for port in (8001, 9090, 9093)]  # 401
    assert [a.headers.get("Strict-Transport-Security") for a in answers] == [HSTS] * len(answers)
    local = requests.get(proxy.url(8443, "/metrics", host="localhost"), verify=proxy.ca, timeout=10)
    assert "Strict-Transport-Security" not in local.headers  # `make up` on http://localhost:8000 keeps working


def handshake(port: int, *, versions: tuple[ssl.TLSVersion, ssl.TLSVersion], ciphers: str, ca: str) -> str:
    """The protocol a handshake settles on, with a client that offers only ``versions`` and ``ciphers``."""
    context = ssl.create_default_context(cafile=ca)
    context.minimum_version, context.maximum_version = versions
    context.set_ciphers(ciphers)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
        context.wrap_socket(sock, server_hostname="127.0.0.1") as tls,
    ):
        return str(tls.version())


def test_tls_1_2_and_1_3_with_intermediate_suites_only(proxy: Proxy) -> None:
    port = proxy.ports[8443]
    tls12 = (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)
    assert handshake(port, versions=tls12, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256", ca=proxy.ca) == "TLSv1.2"
    tls13 = (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3)
    assert handshake(port, versions=tls13, ciphers="DEFAULT", ca=proxy.ca) == "TLSv1.3"
    with pytest.raises(ssl.SSLError, match="ALERT_HANDSHAKE_FAILURE"):  # CBC with SHA-1: not intermediate
        handshake(port, versions=tls12, ciphers="ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0", ca=proxy.ca)
    old = (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1)
    with pytest.raises(ssl.SSLError, match=r"PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL"):  # the server's refusal
        handshake(port, versions=old, ciphers="DEFAULT:@SECLEVEL=0", ca=proxy.ca)
