"""The S3 store's identities file: MLflow's admin and the backups' identity, scoped to the two buckets (what each
may do on a real store: tests/integration/test_scale_backup.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from heartrisk.stack import s3_store


def test_the_backups_identity_owns_its_bucket_and_only_reads_mlflows() -> None:
    made = s3_store.identities(("admin", "s1"), ("backup", "s2"), backups_bucket="bk", mlflow_bucket="ml")
    by_name = {identity["name"]: identity for identity in made["identities"]}
    assert by_name["mlflow"]["credentials"] == [{"accessKey": "admin", "secretKey": "s1"}]  # pragma: allowlist secret
    assert "Admin" in by_name["mlflow"]["actions"]
    assert sorted(by_name["backup"]["actions"]) == sorted(
        ["Read:bk", "Write:bk", "List:bk", "Tagging:bk", "Admin:bk", "Read:ml", "List:ml"]
    )


def test_an_identity_without_a_key_is_refused() -> None:
    with pytest.raises(ValueError, match="access key and a secret key"):
        s3_store.identities(("admin", "s1"), ("backup", ""), backups_bucket="bk", mlflow_bucket="ml")


def test_the_file_is_private_and_made_from_the_containers_credentials(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("heartrisk-backup\n")
    (tmp_path / "secret").write_text("backup-secret\n")
    environ = {"AWS_ACCESS_KEY_ID": "heartrisk-mlflow", "AWS_SECRET_ACCESS_KEY": "admin-secret",
               "HEARTRISK_BACKUP_S3_KEY_FILE": str(tmp_path / "key"),
               "HEARTRISK_BACKUP_S3_SECRET_FILE": str(tmp_path / "secret")}  # fmt: skip
    path = s3_store.write_identities(environ, "heartrisk-backups", "heartrisk-mlflow")
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    keys = {i["name"]: i["credentials"][0] for i in json.loads(path.read_text())["identities"]}
    assert keys["mlflow"] == {"accessKey": "heartrisk-mlflow", "secretKey": "admin-secret"}  # pragma: allowlist secret
    assert keys["backup"] == {"accessKey": "heartrisk-backup", "secretKey": "backup-secret"}  # pragma: allowlist secret
