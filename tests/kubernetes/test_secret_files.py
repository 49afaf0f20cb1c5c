"""tools/k8s_secrets.py writes every file the overlays' generators read, from a scale-out checkout's own
credentials, certificates and model keys, private, and never over a file that is there."""

from __future__ import annotations

import importlib.util
import stat
from pathlib import Path
from types import ModuleType

from tests.support.compose import read_env_file
from tests.support.kubernetes import SOURCE, render_tool
from tests.support.paths import ROOT


def secrets_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("k8s_secrets", ROOT / "tools" / "k8s_secrets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_secret_file_of_the_overlays_is_written_from_the_scale_out_checkout(tmp_path: Path) -> None:
    tool, tls, keys = secrets_tool(), tmp_path / "tls", tmp_path / "keys"
    for folder, names in ((tls, ("ca.pem", "server.pem", "server-key.pem")), (keys, tool.FROM_KEYS.values())):
        folder.mkdir()
        for name in names:
            (folder / name).write_text(f"{name} of this checkout")
    base, disposable = tmp_path / "base", tmp_path / "disposable"
    files = tool.wanted(tmp_path / ".env.scale", tls, keys, base, disposable)
    written = tool.write(files)

    named = {
        (path.parent.parent.name, path.name)
        for kustomization in (SOURCE / "base" / "kustomization.yaml", SOURCE / "overlays/disposable/kustomization.yaml")
        for path in render_tool().secret_files(kustomization)
    }
    assert {(p.parent.name, p.name) for p in written} == named  # base/..., disposable/...
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in written)
    env = read_env_file(tmp_path / ".env.scale")
    assert (base / "admin-password").read_text() == env["HEARTRISK_ADMIN_PASSWORD"]
    assert (base / "mlflow-db-password").read_text() == env["HEARTRISK_MLFLOW_DB_PASSWORD"]
    assert (disposable / "tls-key").read_text() == "server-key.pem of this checkout"
    user, hashed = (base / "ui-htpasswd").read_text().strip().split(":", 1)
    assert (
        user == env["HEARTRISK_ADMIN_USER"]
        and hashed.startswith("$6$")
        and env["HEARTRISK_ADMIN_PASSWORD"] not in hashed
    )
    assert tool.write(files) == []  # nothing is written over
