"""Write the scale-out stack's secrets file (`.env.scale`, git-ignored) with random values, once.

Usage: python3 tools/scale_env.py [PATH [SECRETS_DIR]]   (default .env.scale and .secrets beside it; `make scale-up`)

A missing file is created with mode 0600; an existing one is reused as it is, and only a name it lacks
(added by a later version of the stack) is appended, so running this again never changes a credential
that services already use. To rotate one, edit its value and restart (docs/operations.md). Values are
URL-safe (they go into database URLs as they are) and 32 characters or more. The file also holds the
proxy's settings a deployment tunes (SETTINGS: the throttle, X-Served-By), written with their defaults so
that they can be seen and edited in one place (docs/security.md), and the backups' schedule and retention.

Credentials that reach their services as compose secrets (files under /run/secrets, never an environment value)
are files of their own in SECRETS_DIR (SECRET_FILES; the folder 0700, git-ignored), made once like the others.
A file is 0644 inside that folder, as the TLS server key is (heartrisk.tls): compose mounts a secret with the
host's owner and mode, and the services read it as their own users. Standard library only: it runs before any
environment exists.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

NAMES = {
    "HEARTRISK_ADMIN_USER": "the MLflow admin, and the user of Prefect's auth string (user:password)",
    "HEARTRISK_ADMIN_PASSWORD": "that user's password, in MLflow and in Prefect",
    "HEARTRISK_APP_MLFLOW_PASSWORD": "the app's read-only MLflow account (heartrisk-app)",
    "HEARTRISK_MLFLOW_SECRET_KEY": "Flask key shared by the MLflow replicas",  # pragma: allowlist secret
    "HEARTRISK_MLFLOW_DB_PASSWORD": "PostgreSQL role mlflow (MLflow's runs and registry)",
    "HEARTRISK_MLFLOW_AUTH_DB_PASSWORD": "PostgreSQL role mlflow_auth (MLflow's users)",
    "HEARTRISK_PREFECT_DB_PASSWORD": "PostgreSQL role prefect",  # pragma: allowlist secret
    "HEARTRISK_PREDICTIONS_DB_PASSWORD": "PostgreSQL role predictions (the prediction log)",  # pragma: allowlist secret
    "HEARTRISK_METRICS_DB_PASSWORD": "PostgreSQL role metrics (pg_monitor: the exporter)",  # pragma: allowlist secret
    "HEARTRISK_S3_ACCESS_KEY": "the S3 store's access key (held by the MLflow servers only)",
    "HEARTRISK_S3_SECRET_KEY": "the S3 store's secret key (held by the MLflow servers only)",
}
FIXED = {"HEARTRISK_ADMIN_USER": "heartrisk-admin", "HEARTRISK_S3_ACCESS_KEY": "heartrisk-mlflow"}
# Not secrets: the proxy's settings, with deploy/nginx-start.sh's defaults (a unit test keeps them equal).
SETTINGS = {
    "HEARTRISK_RATE_LIMIT": ("10", "requests a second per client address to the app (form and API) before 429s"),
    "HEARTRISK_RATE_BURST": ("20", "requests over that rate a client address may send at once"),
    "HEARTRISK_BATCH_RATE_LIMIT": (
        "6",
        "large requests (100 000 bytes or more, about 500 records) a minute per address",
    ),
    "HEARTRISK_BATCH_BURST": ("3", "large requests over that rate a client address may send at once"),
    "HEARTRISK_PROXY_SERVED_BY": ("off", "on: answers name the app replica that gave them (X-Served-By)"),
    # The backups of PostgreSQL (pgBackRest), the artifacts and the volumes (docs/operations.md), in UTC
    "HEARTRISK_BACKUP_FULL_CRON": ("30 1 * * 0", "when a full backup is taken (cron, UTC): Sundays at 01:30"),
    "HEARTRISK_BACKUP_DIFF_CRON": ("30 1 * * 1-6", "when a differential backup is taken (cron, UTC): other days"),
    "HEARTRISK_BACKUP_RETENTION_FULL": ("4", "full backups kept (with their differentials and WAL); older expire"),
}
# Compose secrets: file name -> (meaning, fixed value or None for a random one).
SECRET_FILES = {
    "backup-s3-key": ("the backups' S3 access key (PostgreSQL's archive and the backup service)", "heartrisk-backup"),
    "backup-s3-secret": ("the backups' S3 secret key", None),
}
SECRET_FILE_MODE = 0o644  # inside a 0700 folder: see the docstring


def present(path: Path) -> set[str]:
    """Names already assigned in the file."""
    lines = path.read_text().splitlines() if path.exists() else []
    return {line.split("=", 1)[0].strip() for line in lines if "=" in line and not line.lstrip().startswith("#")}


def missing_lines(names: set[str]) -> list[str]:
    made = [
        f"# {meaning}\n{name}={FIXED.get(name) or secrets.token_urlsafe(24)}\n"
        for name, meaning in NAMES.items()
        if name not in names
    ]
    return made + [f"# {meaning}\n{name}={value}\n" for name, (value, meaning) in SETTINGS.items() if name not in names]


def write(path: Path) -> list[str]:
    """Create or complete the file; the names it added."""
    names = present(path)
    lines = missing_lines(names)
    if not path.exists():
        lines.insert(0, "# Secrets and settings of the scale-out stack (make scale-up). Never commit this file.\n")
    elif lines and path.read_text() and not path.read_text().endswith("\n"):
        lines.insert(0, "\n")  # the last line was left without its newline (an editor)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as file:
        file.writelines(lines)
    os.chmod(path, 0o600)  # also when the file existed with a looser mode
    return [name for name in (*NAMES, *SETTINGS) if name not in names]


def write_secret_files(folder: Path) -> list[str]:
    """Create the secret files the folder lacks (never rewriting one); the names it added."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    added = []
    for name, (_, fixed) in SECRET_FILES.items():
        path = folder / name
        if path.exists():
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_FILE_MODE)
        with os.fdopen(fd, "w") as file:
            file.write(fixed or secrets.token_urlsafe(24))
        path.chmod(SECRET_FILE_MODE)
        added.append(name)
    return added


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else ".env.scale")
    folder = Path(argv[2]) if len(argv) > 2 else path.parent / ".secrets"
    existed = path.exists()
    added = write(path)
    if files := write_secret_files(folder):
        print(f"Wrote {', '.join(files)} in {folder} (compose secrets, git-ignored: never commit them).")
    if not existed:
        print(f"Created {path} (mode 0600) with random credentials (.env.scale is git-ignored: never commit it).")
    elif added:
        print(f"Added {', '.join(added)} to {path}; the other credentials are unchanged.")
    else:
        print(f"Using the credentials in {path}.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
