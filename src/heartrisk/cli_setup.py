"""The ``heartrisk`` commands that make what the servers need before they start, each safe to run again:
MLflow's databases, accounts and bucket (``mlflow-db-upgrade``, the compose job before MLflow's servers), the key
pair that signs model versions (``model-keys``) and the scale-out stack's TLS certificates (``tls-certs``, run by
``make scale-up``). :mod:`heartrisk.cli` dispatches to these handlers as to its own; they print what every command
prints (:func:`heartrisk.cli_args.emit`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from heartrisk.cli_args import emit
from heartrisk.config import get_settings


def cmd_mlflow_db_upgrade(args: argparse.Namespace) -> int:
    """Before MLflow's servers start (compose: a one-shot job; Kubernetes: each pod's init container, one at a
    time): its database, its users database and accounts, its bucket."""
    from heartrisk.stack import mlflow_setup, processes

    settings = get_settings()
    backend, _ = processes.mlflow_stores(settings, args.state_dir)
    with mlflow_setup.one_at_a_time(backend):  # every MLflow pod may run it: one at a time
        store = processes.mlflow_db_upgrade(settings, state_dir=args.state_dir)
        result: dict[str, Any] = {"backend_store": store, "upgraded": True}
        lines = [f"MLflow's database {store} has this MLflow's schema."]
        if settings.mlflow.auth_db:
            result["users"] = mlflow_setup.prepare_users(settings.mlflow)
            lines.append("MLflow's users: " + ", ".join(f"{user} {done}" for user, done in result["users"].items()))
        if bucket := mlflow_setup.ensure_bucket(settings.mlflow):
            result["bucket"] = bucket
            lines.append(f"Artifact bucket {bucket}.")
    emit(result, lines)
    return 0


def cmd_model_keys(args: argparse.Namespace) -> int:
    """The key pair that signs (training) and verifies (app, monitor) model versions: made when missing."""
    from heartrisk.stack import processes

    settings = get_settings()
    lines: list[str] = []
    processes.model_keys(settings, log=lines.append)
    keys = settings.mlflow.model_signing_key_file, settings.mlflow.model_verify_key_file
    emit({"signing_key": str(keys[0]), "verify_key": str(keys[1])}, lines)
    return 0


def cmd_tls_certs(args: argparse.Namespace) -> int:
    """The scale-out stack's certificates: the user's own, checked and copied in, or a local CA's, made once."""
    from heartrisk import tls

    settings = get_settings().tls
    folder = Path(args.dir) if args.dir else settings.folder
    own = None
    if settings.cert_file or settings.key_file:
        ca = Path(settings.ca_file) if settings.ca_file else None
        own = (Path(settings.cert_file), Path(settings.key_file), ca)
    try:
        lines = tls.ensure(folder, public_host=settings.public_host, own=own)
    except tls.TlsError as exc:
        print(f"heartrisk tls-certs: {exc}", file=sys.stderr)
        return 2
    files = tls.TlsFiles(folder)
    emit({"dir": str(folder), "ca": str(files.ca), "cert": str(files.cert), "key": str(files.key)}, lines)
    return 0
