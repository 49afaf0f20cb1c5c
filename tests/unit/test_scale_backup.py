"""The volumes' part of a scale-out backup set: which folders, and their archive both ways. The set's S3 side
(copies, expiry, putting back) is tests/integration/test_scale_backup.py's, against a real store."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from heartrisk import scale_backup
from heartrisk.config import get_settings
from heartrisk.pgbackrest import BaseBackup


def folders(root: Path) -> dict[str, Path]:
    made = {name: root / name.replace("/", "-") for name in ("evidently", "keys/signing", "keys/verify")}
    for folder in made.values():
        folder.mkdir(parents=True)
    return made


def test_a_set_holds_the_evidently_workspace_and_the_model_key_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTRISK_EVIDENTLY_WORKSPACE", "/state/evidently")
    monkeypatch.setenv("HEARTRISK_MODEL_SIGNING_KEY_FILE", "/state/keys/signing/model-signing.pem")
    monkeypatch.setenv("HEARTRISK_MODEL_VERIFY_KEY_FILE", "/state/keys/verify/model-verify.pem")
    monkeypatch.setenv("HEARTRISK_MLFLOW_ARTIFACTS", "s3://heartrisk-mlflow/artifacts")
    settings = get_settings()
    assert scale_backup.volumes(settings) == {
        "evidently": Path("/state/evidently"),
        "keys/signing": Path("/state/keys/signing"),
        "keys/verify": Path("/state/keys/verify"),
    }
    assert scale_backup.mlflow_bucket(settings) == "heartrisk-mlflow"


def test_the_volumes_come_back_file_for_file_with_their_modes(tmp_path: Path) -> None:
    source = folders(tmp_path / "before")
    (source["evidently"] / "project" / "snapshots").mkdir(parents=True)
    (source["evidently"] / "project" / "snapshots" / "one.json").write_text('{"metrics": []}')
    (source["keys/signing"] / "model-signing.pem").write_text("private")
    (source["keys/signing"] / "model-signing.pem").chmod(0o600)
    (source["keys/verify"] / "model-verify.pem").write_text("public")
    archive, files, size = scale_backup.pack(source)
    assert (files, size) == (3, len('{"metrics": []}') + len("private") + len("public"))

    target = folders(tmp_path / "after")  # the fresh volumes' mount points: their content is written, not them
    assert scale_backup.unpack(archive, target) == 3
    assert (target["evidently"] / "project" / "snapshots" / "one.json").read_text() == '{"metrics": []}'
    assert (target["keys/signing"] / "model-signing.pem").stat().st_mode & 0o777 == 0o600
    assert (target["keys/verify"] / "model-verify.pem").read_text() == "public"


def archive_with(name: str, *, link: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        entry = tarfile.TarInfo(name)
        if link:
            entry.type, entry.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(entry)
        else:
            entry.size = 1
            tar.addfile(entry, io.BytesIO(b"x"))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "link"),
    [("elsewhere/file", False), ("evidently/../../escape", False), ("/evidently/abs", False), ("evidently/l", True)],
)
def test_an_archive_entry_outside_the_known_folders_or_not_a_plain_file_is_refused(
    tmp_path: Path, name: str, link: bool
) -> None:
    with pytest.raises(ValueError, match="unexpected entry"):
        scale_backup.unpack(archive_with(name, link=link), folders(tmp_path))
    assert not any(path.is_file() for path in tmp_path.rglob("*"))


def test_a_set_reports_its_sizes_and_what_the_pushgateway_gets() -> None:
    base = BaseBackup("20261204-010000F", "full", 1.0, 2.0, database_bytes=1000, stored_bytes=300)
    taken = scale_backup.Taken(base, objects=4, object_bytes=50, copied=1, volume_files=3, volume_bytes=7,
                               seconds=2.04, expired=0)  # fmt: skip
    assert (taken.files, taken.bytes) == (7, 1057)
    assert taken.to_json() | {"seconds": 2.0} == {
        "label": "20261204-010000F", "type": "full", "database_bytes": 1000, "stored_bytes": 300, "objects": 4,
        "object_bytes": 50, "objects_copied": 1, "volume_files": 3, "volume_bytes": 7, "seconds": 2.0,
        "expired_sets": 0,
    }  # fmt: skip
