"""The scale-out stack's backup set: PostgreSQL by pgBackRest, and beside it what PostgreSQL does not hold.

Everything goes to the S3 store's backups bucket (``HEARTRISK_BACKUP_BUCKET``), with the backups' own identity:

- ``pgbackrest/``: pgBackRest's repository, the base backups and the WAL archive (PostgreSQL pushes each
  segment itself: :mod:`heartrisk.pgbackrest`, deploy/postgres-start.sh); a restore goes to any moment after
  the oldest backup kept.
- ``mlflow/<key>/<etag>``: one copy of each content of MLflow's artifact bucket, shared by every backup that
  saw it (an artifact is written once and never changed, so a backup copies only what is new).
- ``sets/<label>/volumes.tar.gz``: the volumes' files, the Evidently workspace and the model key pair (without
  the keys a restored champion's signature matches no key, and the stack would train another).
- ``sets/<label>/manifest.json``: written last, so a set with one is complete; it names each artifact's copy.

A set takes the label of its pgBackRest backup. pgBackRest expires backups by count
(``HEARTRISK_BACKUP_RETENTION_FULL`` fulls, with their differentials and WAL); after each backup the sets of
expired labels go, then the artifact copies no set names. Each backup pushes its success to the Pushgateway
(``HeartRiskBackupStale``), as ``heartrisk backup`` does for the local stack.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from heartrisk import pgbackrest
from heartrisk.settings import Settings

SETS, OBJECTS, MANIFEST, VOLUMES = "sets", "mlflow", "manifest.json", "volumes.tar.gz"
LOCK = Path(tempfile.gettempdir()) / "heartrisk-scale-backup.lock"


@dataclass(frozen=True)
class Taken:
    """One backup set: the base backup, the artifacts it names, the volumes' files."""

    base: pgbackrest.BaseBackup
    objects: int
    object_bytes: int
    copied: int  # artifacts new since the previous backup
    volume_files: int
    volume_bytes: int
    seconds: float
    expired: int  # sets of expired backups deleted after this one

    @property
    def files(self) -> int:  # for heartrisk.pushed.backup, as a local backup's
        return self.objects + self.volume_files

    @property
    def bytes(self) -> int:
        return self.base.database_bytes + self.object_bytes + self.volume_bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.base.label,
            "type": self.base.kind,
            "database_bytes": self.base.database_bytes,
            "stored_bytes": self.base.stored_bytes,
            "objects": self.objects,
            "object_bytes": self.object_bytes,
            "objects_copied": self.copied,
            "volume_files": self.volume_files,
            "volume_bytes": self.volume_bytes,
            "seconds": round(self.seconds, 1),
            "expired_sets": self.expired,
        }


def volumes(settings: Settings) -> dict[str, Path]:
    """The folders of the volumes in a set, by their name in its archive."""
    return {
        "evidently": Path(settings.evidently.workspace),
        "keys/signing": Path(settings.mlflow.model_signing_key_file).parent,
        "keys/verify": Path(settings.mlflow.model_verify_key_file).parent,
    }


def mlflow_bucket(settings: Settings) -> str:
    return urlsplit(settings.mlflow.artifacts).netloc


def client(settings: Settings, *, own_identity: bool = True) -> Any:
    """boto3's S3 client for the store: with the backups' identity (its secret files), or with the process's
    own (the environment's, MLflow's, for putting artifacts back)."""
    import boto3

    backup = settings.backup
    keys = {}
    if own_identity:
        keys = {
            "aws_access_key_id": Path(backup.s3_key_file).read_text().strip(),
            "aws_secret_access_key": Path(backup.s3_secret_file).read_text().strip(),
        }
    return boto3.client(
        "s3", endpoint_url=backup.s3_endpoint, verify=backup.s3_ca_file, region_name="us-east-1", **keys
    )


def listing(s3: Any, bucket: str, prefix: str = "") -> dict[str, dict[str, Any]]:
    """Every object under ``prefix``: key -> {etag, bytes}."""
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = {"etag": item["ETag"].strip('"'), "bytes": int(item["Size"])}
    return found


def prepare(settings: Settings) -> str:
    """The bucket (created when missing) and pgBackRest's stanza (created, or checked when it exists)."""
    from botocore.exceptions import ClientError

    s3, bucket = client(settings), settings.backup.bucket
    try:
        s3.head_bucket(Bucket=bucket)
        made = f"{bucket} exists"
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            raise
        s3.create_bucket(Bucket=bucket)
        made = f"{bucket} created"
    pgbackrest.run("stanza-create", "--log-level-console=info")
    return made


def copy_objects(s3: Any, source: str, bucket: str) -> tuple[dict[str, dict[str, Any]], int]:
    """Copy into ``mlflow/`` each artifact content not yet there; what the bucket holds now, and how many copied."""
    held = set(listing(s3, bucket, f"{OBJECTS}/"))
    objects = listing(s3, source)
    copied = 0
    for key, entry in objects.items():
        target = f"{OBJECTS}/{key}/{entry['etag']}"
        if target not in held:
            s3.copy_object(Bucket=bucket, Key=target, CopySource={"Bucket": source, "Key": key})
            copied += 1
    return objects, copied


def pack(folders: dict[str, Path]) -> tuple[bytes, int, int]:
    """The folders as one gzipped tar (each under its name); its bytes, files and bytes of files."""
    buffer, files, size = io.BytesIO(), 0, 0
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, folder in folders.items():
            tar.add(folder, arcname=name)
            for path in folder.rglob("*"):
                if path.is_file():
                    files, size = files + 1, size + path.stat().st_size
    return buffer.getvalue(), files, size


def take(settings: Settings, kind: str) -> Taken:
    """One backup set now: pgBackRest's backup of ``kind``, the artifacts, the volumes, the manifest; then the
    sets of expired backups. One at a time (the service's schedule and `make scale-backup` may meet)."""
    if kind not in pgbackrest.KINDS:
        raise ValueError(f"a backup is one of {', '.join(pgbackrest.KINDS)}, not {kind!r}")
    began = time.monotonic()
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        before = {b.label for b in pgbackrest.backups()}
        pgbackrest.run("backup", f"--type={kind}", "--log-level-console=info")
        found = pgbackrest.backups()
        base = next(b for b in reversed(found) if b.label not in before)
        s3, bucket = client(settings), settings.backup.bucket
        objects, copied = copy_objects(s3, mlflow_bucket(settings), bucket)
        archive, files, size = pack(volumes(settings))
        s3.put_object(Bucket=bucket, Key=f"{SETS}/{base.label}/{VOLUMES}", Body=archive)
        manifest = {
            "label": base.label,
            "type": base.kind,
            "stopped": base.stopped,
            "objects": objects,
            "volumes": {"files": files, "bytes": size},
        }
        s3.put_object(Bucket=bucket, Key=f"{SETS}/{base.label}/{MANIFEST}", Body=json.dumps(manifest).encode())
        expired = expire(s3, bucket, {b.label for b in found})
    sizes = sum(entry["bytes"] for entry in objects.values())
    return Taken(base, len(objects), sizes, copied, files, size, time.monotonic() - began, expired)


def complete_sets(s3: Any, bucket: str) -> set[str]:
    """The labels whose set has its manifest."""
    return {PurePosixPath(key).parent.name for key in listing(s3, bucket, f"{SETS}/") if key.endswith(f"/{MANIFEST}")}


def manifest(s3: Any, bucket: str, label: str) -> dict[str, Any]:
    return json.loads(s3.get_object(Bucket=bucket, Key=f"{SETS}/{label}/{MANIFEST}")["Body"].read())


def expire(s3: Any, bucket: str, kept: set[str]) -> int:
    """Delete the sets of backups pgBackRest no longer keeps, then the artifact copies no kept set names."""
    held = listing(s3, bucket, f"{SETS}/")
    gone = {PurePosixPath(key).parts[1] for key in held} - kept
    for key in held:
        if PurePosixPath(key).parts[1] in gone:
            s3.delete_object(Bucket=bucket, Key=key)
    named = {
        f"{OBJECTS}/{key}/{entry['etag']}"
        for label in complete_sets(s3, bucket)
        for key, entry in manifest(s3, bucket, label)["objects"].items()
    }
    for key in set(listing(s3, bucket, f"{OBJECTS}/")) - named:
        s3.delete_object(Bucket=bucket, Key=key)
    return len(gone)


def restore_objects(settings: Settings, label: str) -> int:
    """Put back into MLflow's bucket each artifact of the set that it lacks (or holds changed), with the
    process's own identity (MLflow's: the backups' may only read that bucket); how many were put back."""
    return put_back(client(settings, own_identity=False), settings.backup.bucket, mlflow_bucket(settings), label)


def put_back(s3: Any, bucket: str, target: str, label: str) -> int:
    present = listing(s3, target)
    restored = 0
    for key, entry in manifest(s3, bucket, label)["objects"].items():
        if present.get(key, {}).get("etag") != entry["etag"]:
            source = {"Bucket": bucket, "Key": f"{OBJECTS}/{key}/{entry['etag']}"}
            s3.copy_object(Bucket=target, Key=key, CopySource=source)
            restored += 1
    return restored


def unpack(archive: bytes, folders: dict[str, Path]) -> int:
    """Write the archive's files into the folders (the volumes' mount points: their content, not the folders);
    only plain files and folders under the known names, none outside them. How many files were written."""
    written = 0
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for member in tar.getmembers():
            path = PurePosixPath(member.name)
            name = next((n for n in folders if path == PurePosixPath(n) or PurePosixPath(n) in path.parents), None)
            if name is None or ".." in path.parts or path.is_absolute() or not (member.isfile() or member.isdir()):
                raise ValueError(f"unexpected entry in the set's archive: {member.name}")
            target = folders[name] / path.relative_to(name)
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as source, open(target, "wb") as out:  # type: ignore[union-attr]
                out.write(source.read())
            os.chmod(target, member.mode & 0o777)
            written += 1
    return written


def restore_volumes(settings: Settings, label: str) -> int:
    s3, bucket = client(settings), settings.backup.bucket
    archive = s3.get_object(Bucket=bucket, Key=f"{SETS}/{label}/{VOLUMES}")["Body"].read()
    return unpack(archive, volumes(settings))
