"""The scale-out stack's nginx (deploy/nginx.conf, rendered by deploy/nginx-start.sh) on loopback, in front of a
test's app, and HTTP clients that send from a chosen loopback address (the throttle counts per address)."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from tests.support.paths import ROOT
from tests.support.servers import free_ports, require, running
from tests.support.tls import stack_certificates

NGINX = Path("/usr/sbin/nginx")
START = ROOT / "deploy" / "nginx-start.sh"
CONF = ROOT / "deploy" / "nginx.conf"
LOGIN = {"HEARTRISK_ADMIN_USER": "heartrisk-admin", "HEARTRISK_ADMIN_PASSWORD": "x"}  # pragma: allowlist secret


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


def on_loopback(conf: str) -> tuple[str, dict[str, int]]:
    """The rendered config with each ``listen`` on a free loopback port (the stack's fixed ports may be taken on
    this machine), run as root when the test is (nginx's workers would otherwise be nobody, who cannot read the
    folder the script made 0700); and the new port of each old one."""
    listens = re.findall(r"^\s*listen (\S+);", conf, flags=re.MULTILINE)
    ports = dict(zip(listens, free_ports(len(listens)), strict=True))
    conf = re.sub(
        r"^(\s*)listen (\S+);", lambda m: f"{m.group(1)}listen 127.0.0.1:{ports[m.group(2)]};", conf, flags=re.M
    )
    return ("user root;\n" if os.geteuid() == 0 else "") + conf, ports


@contextmanager
def loopback_proxy(tmp: Path, app_url: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """nginx as the scale-out stack starts it (with ``env`` for its settings), its app server pointed at
    ``app_url``; the URL of the app through it, until the block ends."""
    require(NGINX.is_file(), "nginx is not installed (Debian: apt-get install nginx-light)")
    upstream = app_url.removeprefix("http://")
    done = render(tmp, {"HEARTRISK_PROXY_APP_UPSTREAM": upstream, **(env or {})})
    assert done.returncode == 0, done.stderr
    conf, ports = on_loopback(done.stdout)
    (tmp / "nginx.conf").write_text(conf)
    url = f"http://127.0.0.1:{ports['8000']}"
    command = [str(NGINX), "-e", "stderr", "-c", str(tmp / "nginx.conf")]
    with running(command, health=f"{url}/healthz", log=tmp / "nginx.log"):
        yield url


class _FromAddress(HTTPAdapter):
    """Connections made from ``source`` (requests-toolbelt's SourceAddressAdapter, in the lines it takes)."""

    def __init__(self, source: str) -> None:
        self._source = (source, 0)
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = self._source
        super().init_poolmanager(*args, **kwargs)


def client_at(address: str) -> requests.Session:
    """A session whose requests come from ``address`` (any of 127.0.0.0/8 on Linux's loopback)."""
    session = requests.Session()
    session.trust_env = False  # loopback only: no proxy from the environment
    session.mount("http://", _FromAddress(address))
    return session
