"""The scale-out backups' files, checked without Docker: pgBackRest's configuration as the containers write it,
the backups' secret files, who mounts them in docker-compose.scale.yaml, and make scale-restore's steps
(tools/scale_restore.py). The running stack's drill is tests/stack/restore_check.py."""

from __future__ import annotations

import importlib.util
import stat
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.support.paths import ROOT
from tests.unit.test_deploy import overlay, scale_env  # noqa: F401 - overlay: the resolved compose model

CONFIGURE = ROOT / "deploy" / "pgbackrest-conf.sh"


def restore_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("scale_restore", ROOT / "tools" / "scale_restore.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def configure(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    (tmp_path / "key").write_text("heartrisk-backup")
    (tmp_path / "secret").write_text("s3cr3t-value")
    base = {"PATH": "/usr/bin:/bin", "PGBACKREST_CONFIG": str(tmp_path / "pb" / "pgbackrest.conf"),
            "HEARTRISK_BACKUP_S3_KEY_FILE": str(tmp_path / "key"),
            "HEARTRISK_BACKUP_S3_SECRET_FILE": str(tmp_path / "secret")}  # fmt: skip
    return subprocess.run(["sh", str(CONFIGURE)], env=base | env, capture_output=True, text=True, check=False)


def test_pgbackrest_gets_the_stores_bucket_over_https_with_the_secrets_in_a_private_file(tmp_path: Path) -> None:
    done = configure(tmp_path, HEARTRISK_BACKUP_S3_ENDPOINT="https://s3:8333", HEARTRISK_BACKUP_RETENTION_FULL="3")
    assert done.returncode == 0, done.stderr
    path = tmp_path / "pb" / "pgbackrest.conf"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    lines = set(path.read_text().splitlines())
    assert {
        "repo1-type=s3", "repo1-s3-bucket=heartrisk-backups", "repo1-s3-endpoint=s3", "repo1-storage-port=8333",
        "repo1-s3-uri-style=path", "repo1-storage-ca-file=/run/secrets/tls-ca", "repo1-s3-key=heartrisk-backup",
        "repo1-s3-key-secret=s3cr3t-value", "repo1-retention-full=3", "[heartrisk]",
        "pg1-path=/var/lib/postgresql/data", "pg1-socket-path=/var/run/postgresql", "pg1-user=postgres",
    } <= lines  # fmt: skip
    assert not list(path.parent.glob("*.part"))


@pytest.mark.parametrize(
    ("endpoint", "missing", "said"),
    [("http://s3:8333", "", "must be https://"), ("https://s3:8333", "secret", "no backup S3 credential")],
)
def test_a_plain_http_store_or_a_missing_secret_stops_the_container(
    tmp_path: Path, endpoint: str, missing: str, said: str
) -> None:
    env = {"HEARTRISK_BACKUP_S3_ENDPOINT": endpoint}
    if missing:
        env["HEARTRISK_BACKUP_S3_SECRET_FILE"] = str(tmp_path / "absent")
    done = configure(tmp_path, **env)
    assert done.returncode == 2 and said in done.stderr
    assert not (tmp_path / "pb" / "pgbackrest.conf").exists()


def test_the_backups_secret_files_are_made_once_readable_inside_a_private_folder(tmp_path: Path) -> None:
    tool, folder = scale_env(), tmp_path / "secrets"
    assert tool.write_secret_files(folder) == list(tool.SECRET_FILES)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert (folder / "backup-s3-key").read_text() == "heartrisk-backup"
    secret = (folder / "backup-s3-secret").read_text()
    assert len(secret) >= 32 and stat.S_IMODE((folder / "backup-s3-secret").stat().st_mode) == 0o644
    assert tool.write_secret_files(folder) == [] and (folder / "backup-s3-secret").read_text() == secret


def test_only_postgresql_the_store_and_the_backup_service_get_the_backups_credentials(
    overlay: tuple[dict[str, Any], dict[str, str]],  # noqa: F811
) -> None:
    model = overlay[0]
    services = model["services"]
    mounted = {name: {s["source"] for s in service.get("secrets", [])} for name, service in services.items()}
    for secret in ("backup-s3-key", "backup-s3-secret"):
        assert {name for name, found in mounted.items() if secret in found} == {"postgres", "s3", "backup"}
    assert all("BACKUP_S3_SECRET" not in str(s.get("environment")) for s in services.values())
    backup = services["backup"]
    assert backup["read_only"] and backup["cap_drop"] == ["ALL"] and backup["group_add"] == ["999"]
    data = next(v for v in backup["volumes"] if v["target"] == "/var/lib/postgresql/data")
    assert data["read_only"] is True  # a backup only reads PostgreSQL's files
    sharing = {name for name, s in services.items() for v in s.get("volumes", []) if v["source"] == "postgres-socket"}
    assert sharing == {"postgres", "backup"}
    assert model["volumes"]["s3"]["external"] is True  # `down --volumes` keeps the backups


def test_a_restore_replaces_the_volumes_then_fills_them_from_one_set() -> None:
    tool = restore_tool()
    compose = ["docker", "compose", "-f", "a.yaml"]
    assert tool.parse(["--time", "2026-12-04 21:00:00+00", "--", *compose]) == ("2026-12-04 21:00:00+00", compose)
    assert tool.parse(["--time", "", "--", *compose]) == (None, compose)
    for bad in (["--", *[]], [*compose], ["--label", "x", "--", *compose]):
        with pytest.raises(SystemExit):
            tool.parse(bad)
    assert tool.choose(compose, None)[-2:] == ["scale-backup", "choose"]
    steps = [step[len(compose) :] for step in tool.restore_steps(compose, "L1", "2026-12-04 21:00:00+00")]
    assert steps[0] == ["down", "--volumes", "--remove-orphans"]
    assert steps[1] == ["up", "--detach", "--wait", "s3"]
    assert steps[2][-4:] == ["--set=L1", "--type=time", "--target=2026-12-04 21:00:00+00", "--target-action=promote"]
    assert steps[2][4:6] == ["postgres", "heartrisk-postgres-restore"]
    assert steps[3][-3:] == ["scale-backup", "restore-objects", "L1"] and "mlflow-setup" in steps[3]
    assert steps[4][-3:] == ["scale-backup", "restore-volumes", "L1"] and "backup" in steps[4]
    latest = tool.restore_steps(compose, "L1", None)[2]
    assert latest[-1] == "--set=L1"  # to the end of the archive
