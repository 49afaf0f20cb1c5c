"""The scale-out stack's S3 store (SeaweedFS's ``weed``) with one identity per client, as ``heartrisk s3-server``.

SeaweedFS makes a single admin identity from ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` when it has no
identities file; the stack has two clients, so it gets the file (``-s3.config``), written at each start into this
container's private /tmp (mode 0600) from the credentials the container holds:

- MLflow's (the store's admin, as before: ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``): its bucket, which
  its setup job creates; a restore puts the artifacts back with it.
- the backups' (compose secrets ``backup-s3-key`` / ``backup-s3-secret``): everything on the backups' bucket
  (pgBackRest's repository and the copies beside it), and only reading and listing on MLflow's bucket, which it
  copies. It can neither change nor delete an artifact, nor create another bucket (checked here on
  SeaweedFS 4.48: a put or delete there is AccessDenied).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from heartrisk.config import BIN

READ = ("Read", "List")
OWN = ("Read", "Write", "List", "Tagging", "Admin")


def identities(
    admin: tuple[str, str], backup: tuple[str, str], *, backups_bucket: str, mlflow_bucket: str
) -> dict[str, Any]:
    """SeaweedFS's identities file: the admin, and the backups' identity scoped to the two buckets."""
    actions = [f"{action}:{backups_bucket}" for action in OWN] + [f"{action}:{mlflow_bucket}" for action in READ]
    return {
        "identities": [
            {"name": "mlflow", "credentials": [_key(*admin)], "actions": ["Admin", "Read", "Write", "List", "Tagging"]},
            {"name": "backup", "credentials": [_key(*backup)], "actions": actions},
        ]
    }


def _key(access: str, secret: str) -> dict[str, str]:
    if not access or not secret:
        raise ValueError("an S3 identity needs an access key and a secret key")
    return {"accessKey": access, "secretKey": secret}


def _read(path: str) -> str:
    return Path(path).read_text().strip()


def write_identities(environ: Mapping[str, str], backups_bucket: str, mlflow_bucket: str) -> Path:
    """The identities file from this container's credentials, private to it."""
    admin = (environ.get("AWS_ACCESS_KEY_ID", ""), environ.get("AWS_SECRET_ACCESS_KEY", ""))
    backup = (
        _read(environ.get("HEARTRISK_BACKUP_S3_KEY_FILE", "/run/secrets/backup-s3-key")),
        _read(environ.get("HEARTRISK_BACKUP_S3_SECRET_FILE", "/run/secrets/backup-s3-secret")),
    )
    made = identities(admin, backup, backups_bucket=backups_bucket, mlflow_bucket=mlflow_bucket)
    path = Path(tempfile.mkdtemp(prefix="heartrisk-s3-")) / "identities.json"  # the folder is 0700
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        json.dump(made, file)
    return path


def serve(arguments: list[str], backups_bucket: str, mlflow_bucket: str) -> NoReturn:
    """Replace this process with ``weed ARGUMENTS -s3.config=FILE``; the AWS variables stay out of its environment
    (the file holds the admin's key, and weed would otherwise make a second admin from them)."""
    config = write_identities(os.environ, backups_bucket, mlflow_bucket)
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    command = [str(BIN / "weed"), *arguments, f"-s3.config={config}"]
    os.execve(command[0], command, env)  # noqa: S606 - Docker signals the store itself
