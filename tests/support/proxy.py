"""The scale-out stack's nginx on loopback: deploy/nginx.conf as deploy/nginx-start.sh renders it, with throwaway
certificates of a local CA (``heartrisk tls-certs``), run whole by Debian's nginx with each of its ports moved to a
free loopback port, optionally in front of a test's app; and HTTP clients that send from a chosen loopback address
(the throttle counts per address) and trust that CA only.

Without an app, the other upstreams' names (mlflow, prefect, ...) do not resolve here: only nginx's own answers
are there to ask for (a 404, a 401, a redirect; a 502 once past a login)."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from heartrisk.tls import TlsFiles
from tests.support.paths import ROOT
from tests.support.servers import free_ports, require, running
from tests.support.tls import stack_certificates

NGINX = Path("/usr/sbin/nginx")
START = ROOT / "deploy" / "nginx-start.sh"
CONF = ROOT / "deploy" / "nginx.conf"
ADMIN = ("heartrisk-admin", "x" * 12)  # the login the start script is given  # pragma: allowlist secret
LOGIN = {"HEARTRISK_ADMIN_USER": ADMIN[0], "HEARTRISK_ADMIN_PASSWORD": ADMIN[1]}
LISTEN = re.compile(r"^(\s*)listen (?:127\.0\.0\.1:)?(\d+)( ssl)?;", flags=re.MULTILINE)


@dataclass
class Proxy:
    """A running loopback nginx: where each of the config's ports went, and the CA its certificate is from."""

    ports: dict[int, int]  # the config's port: where this nginx listens on 127.0.0.1
    ca: str

    def url(self, port: int, path: str = "/", scheme: str = "https", host: str = "127.0.0.1") -> str:
        """An address of the config's ``port`` (8443: the form's HTTPS port, where the app is)."""
        return f"{scheme}://{host}:{self.ports[port]}{path}"


def render(tmp: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The start script run with a stand-in nginx that prints the config it was given (stdout) instead of serving;
    its login and rendered config land in ``tmp/nginx``, throwaway certificates (a local CA) in ``tmp/tls``."""
    files = stack_certificates(tmp / "tls")
    fake = tmp / "bin" / "nginx"
    fake.parent.mkdir(parents=True, exist_ok=True)
    fake.write_text('#!/bin/sh\ncat "$4"\n')  # nginx -e stderr -c FILE
    fake.chmod(0o755)
    base = {"PATH": f"{fake.parent}:/usr/bin:/bin", "HEARTRISK_NGINX_CONF": str(CONF)}
    base |= {"HEARTRISK_NGINX_DIR": str(tmp / "nginx"), **LOGIN}
    base |= {"HEARTRISK_TLS_CERT_FILE": str(files.cert), "HEARTRISK_TLS_KEY_FILE": str(files.key)}
    return subprocess.run([str(START)], env={**base, **(env or {})}, capture_output=True, text=True, check=False)


def on_loopback(conf: str, ports: dict[int, int]) -> str:
    """The rendered config with each ``listen`` (plain or ``ssl``) on its port of ``ports`` on 127.0.0.1, run as
    root when the test is (nginx's workers would otherwise be nobody, who cannot read the login file the script
    made private to this user)."""
    conf, moved = LISTEN.subn(lambda m: f"{m[1]}listen 127.0.0.1:{ports[int(m[2])]}{m[3] or ''};", conf)
    assert moved == len(ports), f"{moved} listen lines for {len(ports)} ports"
    return ("user root;\n" if os.geteuid() == 0 else "") + conf


@contextmanager
def loopback_proxy(tmp: Path, app_url: str | None = None, env: dict[str, str] | None = None) -> Iterator[Proxy]:
    """nginx as the scale-out stack starts it (with ``env`` for its settings), its app server pointed at
    ``app_url`` (an http:// address on loopback) when given, until the block ends. Plain HTTP on the app's port
    8000 is redirected to the loopback HTTPS port, as the stack's to HEARTRISK_HTTPS_PORT."""
    require(NGINX.is_file(), "nginx is not installed (Debian: apt-get install nginx-light)")
    listens = sorted({int(port) for _, port, _ in LISTEN.findall(CONF.read_text())})
    ports = dict(zip(listens, free_ports(len(listens)), strict=True))
    settings = {"HEARTRISK_HTTPS_PORT": str(ports[8443])}
    if app_url is not None:
        settings["HEARTRISK_PROXY_APP_UPSTREAM"] = app_url.removeprefix("http://")
    done = render(tmp, {**settings, **(env or {})})
    assert done.returncode == 0, done.stderr
    (tmp / "nginx.conf").write_text(on_loopback(done.stdout, ports))
    command = [str(NGINX), "-e", "stderr", "-c", str(tmp / "nginx.conf")]
    health = f"http://127.0.0.1:{ports[8080]}/healthz"  # nginx's own, as the container's health check asks
    with running(command, health=health, log=tmp / "nginx.log"):
        yield Proxy(ports, str(TlsFiles(tmp / "tls").ca))


class _FromAddress(HTTPAdapter):
    """Connections made from ``source`` (requests-toolbelt's SourceAddressAdapter, in the lines it takes)."""

    def __init__(self, source: str) -> None:
        self._source = (source, 0)
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = self._source
        super().init_poolmanager(*args, **kwargs)


def client_at(address: str, ca: str) -> requests.Session:
    """A session whose requests come from ``address`` (any of 127.0.0.0/8 on Linux's loopback), over HTTP or
    HTTPS, trusting the CA file ``ca`` and nothing else."""
    session = requests.Session()
    # Loopback only: no proxy from the environment; nor its REQUESTS_CA_BUNDLE, which requests would take over
    # the session's own verify
    session.trust_env = False
    session.verify = ca
    session.mount("http://", _FromAddress(address))
    session.mount("https://", _FromAddress(address))
    return session
