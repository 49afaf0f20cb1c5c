"""The S3 side of the scale-out backups on a real store (SeaweedFS's ``weed mini``) started with the stack's two
identities as ``heartrisk s3-server`` writes them: what the backups' identity may and may not do, and a backup
set's artifacts through copies, expiry and putting back. pgBackRest's own part runs in the Docker drill
(tests/stack/restore_check.py)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from heartrisk import scale_backup
from heartrisk.stack import s3_store
from tests.support.s3 import ObjectStore, seaweedfs

BACKUPS, MLFLOW = "heartrisk-backups", "heartrisk-mlflow"


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ObjectStore, ObjectStore]]:
    """(MLflow's view of the store, the backups' view): one store, two identities."""
    folder = tmp_path_factory.mktemp("store")
    secret_files = {name: folder / name for name in ("key", "secret")}
    secret_files["key"].write_text("heartrisk-backup")
    secret_files["secret"].write_text(secrets.token_urlsafe(24))
    admin = ("heartrisk-mlflow", secrets.token_urlsafe(24))
    environ = {
        "AWS_ACCESS_KEY_ID": admin[0],
        "AWS_SECRET_ACCESS_KEY": admin[1],
        "HEARTRISK_BACKUP_S3_KEY_FILE": str(secret_files["key"]),
        "HEARTRISK_BACKUP_S3_SECRET_FILE": str(secret_files["secret"]),
    }
    config = s3_store.write_identities(environ, BACKUPS, MLFLOW)
    assert config.stat().st_mode & 0o777 == 0o600
    (folder / "data").mkdir()
    with seaweedfs(folder / "data", identities=config) as store:
        mlflow = replace(store, access_key=admin[0], secret_key=admin[1])
        backup = replace(store, access_key="heartrisk-backup", secret_key=secret_files["secret"].read_text())
        mlflow.client().create_bucket(Bucket=MLFLOW)
        backup.client().create_bucket(Bucket=BACKUPS)  # the backup service makes its own bucket
        yield mlflow, backup


def refused(call: Any, **kwargs: Any) -> bool:
    try:
        call(**kwargs)
    except ClientError as exc:
        return exc.response["Error"]["Code"] == "AccessDenied"
    return False


def test_the_backups_identity_reads_mlflows_bucket_and_changes_nothing_in_it(stores: tuple[ObjectStore, ...]) -> None:
    mlflow, backup = (store.client() for store in stores)
    mlflow.put_object(Bucket=MLFLOW, Key="artifacts/1/a/MLmodel", Body=b"model")
    assert backup.get_object(Bucket=MLFLOW, Key="artifacts/1/a/MLmodel")["Body"].read() == b"model"
    assert refused(backup.put_object, Bucket=MLFLOW, Key="artifacts/1/a/MLmodel", Body=b"changed")
    assert refused(backup.delete_object, Bucket=MLFLOW, Key="artifacts/1/a/MLmodel")
    assert refused(backup.create_bucket, Bucket="another")
    assert mlflow.get_object(Bucket=MLFLOW, Key="artifacts/1/a/MLmodel")["Body"].read() == b"model"


def write_set(s3: Any, label: str, objects: dict[str, Any]) -> None:
    """A set's manifest, as scale_backup.take writes it last."""
    body = json.dumps({"label": label, "objects": objects}).encode()
    s3.put_object(Bucket=BACKUPS, Key=f"{scale_backup.SETS}/{label}/{scale_backup.MANIFEST}", Body=body)


def test_artifacts_are_copied_once_expire_with_their_sets_and_come_back(stores: tuple[ObjectStore, ...]) -> None:
    mlflow, backup = (store.client() for store in stores)
    for run in ("r1", "r2"):
        mlflow.put_object(Bucket=MLFLOW, Key=f"artifacts/2/{run}/model.onnx", Body=run.encode() * 100)
    objects, copied = scale_backup.copy_objects(backup, MLFLOW, BACKUPS)
    assert copied == len(objects) >= 2
    write_set(backup, "20261201-010000F", objects)
    again, copied = scale_backup.copy_objects(backup, MLFLOW, BACKUPS)
    assert (again, copied) == (objects, 0)  # nothing new: nothing copied

    mlflow.delete_object(Bucket=MLFLOW, Key="artifacts/2/r1/model.onnx")  # gone from MLflow (a purge, a loss)
    mlflow.put_object(Bucket=MLFLOW, Key="artifacts/2/r3/model.onnx", Body=b"r3")
    newer, copied = scale_backup.copy_objects(backup, MLFLOW, BACKUPS)
    assert copied == 1
    write_set(backup, "20261208-010000F", newer)
    assert scale_backup.complete_sets(backup, BACKUPS) == {"20261201-010000F", "20261208-010000F"}

    # the older full expired in pgBackRest: its set goes, and the copy of r1 that only it named
    assert scale_backup.expire(backup, BACKUPS, {"20261208-010000F"}) == 1
    copies = scale_backup.listing(backup, BACKUPS, f"{scale_backup.OBJECTS}/")
    assert not any("/r1/" in key for key in copies) and any("/r3/" in key for key in copies)

    for key in scale_backup.listing(mlflow, MLFLOW):  # every artifact lost, one changed back in by hand
        mlflow.delete_object(Bucket=MLFLOW, Key=key)
    mlflow.put_object(Bucket=MLFLOW, Key="artifacts/2/r2/model.onnx", Body=b"tampered")
    assert refused(scale_backup.put_back, s3=backup, bucket=BACKUPS, target=MLFLOW, label="20261208-010000F")
    assert scale_backup.put_back(mlflow, BACKUPS, MLFLOW, "20261208-010000F") == len(newer)
    assert scale_backup.listing(mlflow, MLFLOW) == newer
    assert mlflow.get_object(Bucket=MLFLOW, Key="artifacts/2/r2/model.onnx")["Body"].read() == b"r2" * 100
    assert scale_backup.put_back(mlflow, BACKUPS, MLFLOW, "20261208-010000F") == 0
