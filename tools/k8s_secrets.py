"""Write the files the Kubernetes Secrets are made from, for a disposable cluster, from a scale-out checkout's own.

Usage: python3 tools/k8s_secrets.py [--env .env.scale] [--tls .tls] [--keys .state/keys] [--secrets .secrets]

The values are `make scale-up`'s: the credentials of .env.scale and the backups' S3 identity of .secrets/
(tools/scale_env.py makes them if missing),
the certificates of .tls (`heartrisk tls-certs --dir .tls` makes them; their names include postgres and s3, which
the disposable overlay's servers answer to, and localhost), the model key pair (`heartrisk model-keys`). Each goes
to deploy/kubernetes/base/secrets/ (the disposable overlay's server certificate and backups' identity to its own
secrets/), mode 0600,
git-ignored; a file already there is left as it is. The Ingress gets the same certificate, so a browser warns
until it trusts .tls/ca.pem or you bring one for your host names. For production, write the files from your
secret manager instead (deploy/kubernetes/base/secrets/README.md lists them).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "deploy" / "kubernetes" / "base" / "secrets"
DISPOSABLE = ROOT / "deploy" / "kubernetes" / "overlays" / "disposable" / "secrets"
FROM_TLS = {"tls-ca": "ca.pem", "ingress-tls-cert": "server.pem", "ingress-tls-key": "server-key.pem"}
SERVER_TLS = {"tls-cert": "server.pem", "tls-key": "server-key.pem"}
FROM_KEYS = {"model-signing.pem": "model-signing.pem", "model-verify.pem": "model-verify.pem"}


def file_name(variable: str) -> str:
    """HEARTRISK_MLFLOW_DB_PASSWORD -> mlflow-db-password: the Secret's key, /run/secrets/<key> in the pods."""
    return variable.removeprefix("HEARTRISK_").lower().replace("_", "-")


def scale_env() -> ModuleType:
    spec = importlib.util.spec_from_file_location("scale_env", ROOT / "tools" / "scale_env.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def htpasswd(user: str, password: str) -> str:
    """The admin's login as the ingress controller reads it (SHA-512 crypt, as deploy/nginx-start.sh writes)."""
    hashed = subprocess.run(
        ["openssl", "passwd", "-6", "-stdin"], input=password + "\n", capture_output=True, text=True, check=True
    ).stdout.strip()
    return f"{user}:{hashed}\n"


def wanted(
    env_file: Path,
    tls: Path,
    keys: Path,
    base: Path = BASE,
    disposable: Path = DISPOSABLE,
    secret_files: Path | None = None,
) -> dict[Path, str | Path]:
    """Each file to write: a value, or the path of the file to copy (the compose secrets' folder: .secrets beside
    the env file, as scale_env's default)."""
    tool = scale_env()
    tool.write(env_file)
    folder = secret_files or env_file.parent / ".secrets"
    tool.write_secret_files(folder)
    lines = env_file.read_text().splitlines()
    values = dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    files: dict[Path, str | Path] = {base / file_name(name): values[name] for name in tool.NAMES}
    files[base / "ui-htpasswd"] = htpasswd(values["HEARTRISK_ADMIN_USER"], values["HEARTRISK_ADMIN_PASSWORD"])
    files |= {base / key: tls / name for key, name in FROM_TLS.items()}
    files |= {disposable / key: tls / name for key, name in SERVER_TLS.items()}
    files |= {base / key: keys / name for key, name in FROM_KEYS.items()}
    files |= {disposable / name: folder / name for name in tool.SECRET_FILES}  # backup-s3-key, backup-s3-secret
    return files


def write(files: dict[Path, str | Path]) -> list[Path]:
    """Write the files that do not exist yet (0600); the ones written."""
    missing = [source for source in files.values() if isinstance(source, Path) and not source.is_file()]
    if missing:
        raise SystemExit(f"missing: {', '.join(map(str, missing))} (heartrisk tls-certs, heartrisk model-keys)")
    written = []
    for target, source in files.items():
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        content = source.read_bytes() if isinstance(source, Path) else source.encode()
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(content)
        written.append(target)
    return written


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=str(ROOT / ".env.scale"))
    parser.add_argument("--tls", default=str(ROOT / ".tls"))
    parser.add_argument("--keys", default=str(ROOT / ".state" / "keys"))
    parser.add_argument("--secrets", default=str(ROOT / ".secrets"), help="compose's secret files (backup-s3-*)")
    args = parser.parse_args(argv[1:])
    written = write(wanted(Path(args.env), Path(args.tls), Path(args.keys), secret_files=Path(args.secrets)))
    print(f"wrote {len(written)} files: {', '.join(p.name for p in written) or 'none (all were there)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
