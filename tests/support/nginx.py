"""The scale-out stack's nginx on loopback: deploy/nginx.conf as deploy/nginx-start.sh renders it, run whole by
Debian's nginx with the given certificates, each of its ports moved to a free one. No upstream answers (the
replicas' names do not resolve here): only nginx's own answers are there to ask for."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from heartrisk.tls import TlsFiles
from tests.support.paths import ROOT
from tests.support.servers import free_ports, require, running

NGINX = Path("/usr/sbin/nginx")
PORTS = (8000, 8443, 5000, 4200, 8001, 9090, 9093, 8082, 8080)  # every port of deploy/nginx.conf


@dataclass
class Proxy:
    ports: dict[int, int]  # the config's port: where this nginx listens on loopback
    ca: str

    def url(self, port: int, path: str = "/", scheme: str = "https", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.ports[port]}{path}"


def render(folder: Path, files: TlsFiles, https_port: int) -> str:
    """The config the start script writes (a stand-in nginx prints it instead of running it)."""
    fake = folder / "bin" / "nginx"
    fake.parent.mkdir(parents=True)
    fake.write_text('#!/bin/sh\ncat "$4"\n')  # nginx -e stderr -c FILE
    fake.chmod(0o755)
    env = {"PATH": f"{fake.parent}:/usr/bin:/bin", "HEARTRISK_NGINX_CONF": str(ROOT / "deploy" / "nginx.conf")}
    env |= {"HEARTRISK_NGINX_DIR": str(folder / "nginx"), "HEARTRISK_HTTPS_PORT": str(https_port)}
    env |= {"HEARTRISK_TLS_CERT_FILE": str(files.cert), "HEARTRISK_TLS_KEY_FILE": str(files.key)}
    env |= {"HEARTRISK_ADMIN_USER": "admin", "HEARTRISK_ADMIN_PASSWORD": "x" * 12}  # pragma: allowlist secret
    done = subprocess.run([str(ROOT / "deploy" / "nginx-start.sh")], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


@contextmanager
def loopback_proxy(folder: Path, files: TlsFiles) -> Iterator[Proxy]:
    """The stack's nginx with ``files``' certificate until the block ends."""
    require(NGINX.is_file(), "nginx is not installed (Debian: apt-get install nginx-light)")
    ports = dict(zip(PORTS, free_ports(len(PORTS)), strict=True))
    conf = render(folder, files, https_port=ports[8443])
    for port, free in ports.items():
        conf, found = re.subn(rf"listen (127\.0\.0\.1:)?{port}( ssl)?;", rf"listen 127.0.0.1:{free}\2;", conf)
        assert found == 1, port
    if os.geteuid() == 0:  # the workers read the login file, private to this user
        conf = "user root;\n" + conf
    (folder / "nginx.conf").write_text(conf)
    command = [str(NGINX), "-e", "stderr", "-c", str(folder / "nginx.conf")]
    with running(command, health="", log=folder / "nginx.log", wait=False):
        deadline = time.monotonic() + 30
        while socket.socket().connect_ex(("127.0.0.1", ports[8000])) != 0:
            assert time.monotonic() < deadline, (folder / "nginx.log").read_text()
            time.sleep(0.1)
        yield Proxy(ports, str(files.ca))
