"""Model signing: the key pair made once and readable by its owner only; a version verifies only with its own
files, its own name and version, and our key; each way it can fail says why, in one word and a sentence."""

from __future__ import annotations

import json
import multiprocessing
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from heartrisk import signing

FILES = {"model.skops": b"the pipeline", "extra_files/model.onnx": b"the graph"}


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    pair = tmp_path / "keys" / "model-signing.pem", tmp_path / "keys" / "model-verify.pem"
    signing.ensure_pair(*pair)
    return pair


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A version's files as they were signed."""
    root = tmp_path / "model"
    for path, data in FILES.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return root


def signed_tags(key: Ed25519PrivateKey, folder: Path, model: str = "M", version: str = "3") -> dict[str, str]:
    return {signing.TAG: signing.sign(key, model, version, signing.digests(folder, sorted(FILES)))}


def test_the_pair_is_made_once_the_private_key_for_its_owner_only_and_the_message_says_where(tmp_path: Path) -> None:
    private, public = tmp_path / "keys" / "model-signing.pem", tmp_path / "keys" / "model-verify.pem"
    said = signing.ensure_pair(private, public)
    assert said.startswith(f"model signing key created: {private} (training only), {public} (app, monitor), key ")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert signing.load_signing_key(private).public_key() == signing.load_verify_key(public)
    content = private.read_bytes(), public.read_bytes()
    assert signing.ensure_pair(private, public).startswith("model signing key found:")
    assert (private.read_bytes(), public.read_bytes()) == content
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["model-signing.pem", "model-verify.pem"]


def test_a_lost_verify_key_is_made_again_from_the_signing_key_and_a_host_that_only_verifies_makes_nothing(
    keys: tuple[Path, Path], tmp_path: Path
) -> None:
    private, public = keys
    before = public.read_bytes()
    public.unlink()
    signing.ensure_pair(private, public)
    assert public.read_bytes() == before
    app_host = tmp_path / "app" / "model-signing.pem"
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "model-verify.pem").write_bytes(before)
    assert "this host only verifies" in signing.ensure_pair(app_host, tmp_path / "app" / "model-verify.pem")
    assert not app_host.exists()


def test_a_verify_key_of_another_pair_is_reported_not_replaced(keys: tuple[Path, Path], tmp_path: Path) -> None:
    other = tmp_path / "other-signing.pem", tmp_path / "other-verify.pem"
    signing.ensure_pair(*other)
    keys[1].write_bytes(other[1].read_bytes())
    assert "is not the public half of" in signing.ensure_pair(*keys)
    assert keys[1].read_bytes() == other[1].read_bytes()


def _make(folder: str) -> str:
    return signing.ensure_pair(Path(folder, "model-signing.pem"), Path(folder, "model-verify.pem"))


def test_processes_starting_together_make_one_pair(tmp_path: Path) -> None:
    """The worker replicas of the scale-out stack share the key volume and start at once."""
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        said = pool.map(_make, [str(tmp_path)] * 8)
    assert len({line.rsplit("key ", 1)[1] for line in said}) == 1
    assert sum("created" in line for line in said) == 1  # one process made the pair; the others found it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model-signing.pem", "model-verify.pem"]


def test_a_signed_version_gives_back_exactly_the_bytes_that_were_signed(keys: tuple[Path, Path], folder: Path) -> None:
    private, public = signing.load_signing_key(keys[0]), signing.load_verify_key(keys[1])
    files = signing.check_tag(public, signed_tags(private, folder), "M", "3")
    assert files == signing.digests(folder, sorted(FILES))
    assert signing.verified(files, folder, "M version 3") == FILES


def test_an_unsigned_version_is_refused_before_any_file_is_read(keys: tuple[Path, Path]) -> None:
    with pytest.raises(signing.Unsigned, match=r"M version 3: unsigned \(no heartrisk.signature tag\)") as caught:
        signing.check_tag(signing.load_verify_key(keys[1]), {"cv_roc_auc": "0.99"}, "M", "3")
    assert caught.value.kind == "unsigned"


def test_a_version_signed_by_another_key_is_refused_and_names_both_keys(keys: tuple[Path, Path], folder: Path) -> None:
    ours = signing.load_verify_key(keys[1])
    intruder = Ed25519PrivateKey.generate()
    with pytest.raises(signing.OtherKey, match="signed by another key") as caught:
        signing.check_tag(ours, signed_tags(intruder, folder), "M", "3")
    assert signing.key_id(intruder.public_key()) in caught.value.reason and signing.key_id(ours) in caught.value.reason


@pytest.mark.parametrize(
    ("model", "version", "edit"),
    [("M", "4", None), ("Other", "3", None), ("M", "3", "digests")],
    ids=["copied to another version", "copied to another model", "digests edited"],
)
def test_a_signature_made_for_other_files_or_another_version_does_not_verify(
    keys: tuple[Path, Path], folder: Path, model: str, version: str, edit: str | None
) -> None:
    tags = signed_tags(signing.load_signing_key(keys[0]), folder)
    if edit:
        body = json.loads(tags[signing.TAG])
        body["files"]["model.skops"] = "0" * 64  # the digest of an intruder's file
        tags[signing.TAG] = json.dumps(body)
    with pytest.raises(signing.BadSignature, match="its signature does not verify") as caught:
        signing.check_tag(signing.load_verify_key(keys[1]), tags, model, version)
    assert caught.value.kind == "bad_signature"


@pytest.mark.parametrize(
    "value", ["not json", "[]", '{"files": {}}', '{"files": {"a": "b"}, "signature": "%%%"}'], ids=repr
)
def test_an_unreadable_tag_is_refused(keys: tuple[Path, Path], value: str) -> None:
    with pytest.raises(signing.BadSignature, match="tag is unreadable"):
        signing.check_tag(signing.load_verify_key(keys[1]), {signing.TAG: value}, "M", "3")


def test_a_signed_path_outside_the_models_folder_is_refused_even_with_a_valid_signature(
    keys: tuple[Path, Path],
) -> None:
    """Our own training never signs one; a stolen key must not reach files outside the download either."""
    tag = signing.sign(signing.load_signing_key(keys[0]), "M", "3", {"../../etc/passwd": "0" * 64})
    with pytest.raises(signing.BadSignature):
        signing.check_tag(signing.load_verify_key(keys[1]), {signing.TAG: tag}, "M", "3")


@pytest.mark.parametrize("how", ["changed", "missing"])
def test_a_file_changed_or_removed_after_signing_is_refused(keys: tuple[Path, Path], folder: Path, how: str) -> None:
    files = signing.check_tag(
        signing.load_verify_key(keys[1]), signed_tags(signing.load_signing_key(keys[0]), folder), "M", "3"
    )
    if how == "changed":
        (folder / "model.skops").write_bytes(b"cos\nsystem\n(S'touch /tmp/owned'\ntR.")  # a pickle's opcodes
    else:
        (folder / "extra_files" / "model.onnx").unlink()
    expected = "model.skops changed after signing" if how == "changed" else "extra_files/model.onnx is missing"
    with pytest.raises(signing.Changed, match=expected) as caught:
        signing.verified(files, folder, "M version 3")
    assert caught.value.kind == "changed" and str(caught.value).startswith("M version 3: ")


def test_a_missing_or_wrong_key_file_says_which_and_how_to_make_one(keys: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(signing.KeyMissing, match=r"no model verify key at .*heartrisk model-keys"):
        signing.load_verify_key(tmp_path / "nowhere.pem")
    with pytest.raises(signing.KeyMissing, match=r"is not an Ed25519 private key|cannot be read"):
        signing.load_signing_key(keys[1])  # the public half where the private one is expected
    (tmp_path / "garbage.pem").write_text("not a key")
    with pytest.raises(signing.KeyMissing, match="cannot be read"):
        signing.load_verify_key(tmp_path / "garbage.pem")
