"""The registry adapter: every branch of the promotion gate, fingerprints, tags, the skops trust list, and a
version loaded only when its signature and files check out (no file deserialised before)."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import skops.io
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, RESOURCE_DOES_NOT_EXIST
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from heartrisk import registry, signing
from heartrisk.registry import ONNX_FILE, SKOPS_FILE, Champion, Registry, fingerprint, gate
from tests.support.models import fit_pipeline, training_rows


def champion(score: float | None = 0.9, target: str = "disease", version: str = "3") -> Champion:
    return Champion(version=version, score=score, target=target, fingerprint=None)


@pytest.mark.parametrize(
    ("current", "score", "promoted", "reason"),
    [
        (None, 0.5, True, "no champion yet"),
        ("unsigned", 0.5, True, "champion v3 is not signed with this stack's key (the app refuses it)"),
        (champion(0.9), 0.95, True, "CV ROC-AUC 0.9500 >= champion v3 0.9000"),
        (champion(0.9), 0.9, True, "CV ROC-AUC 0.9000 >= champion v3 0.9000"),  # a tie promotes
        (champion(0.9), 0.9000004, True, ">= champion v3"),  # equal at the 6 decimals tagged
        (champion(0.9), 0.8999, False, "CV ROC-AUC 0.8999 < champion v3 0.9000"),
        (champion(None), 0.5, True, "champion v3 has no recorded cv_roc_auc"),
        (champion(0.99, target="output"), 0.5, True, "the target changed from 'output' (champion v3) to 'disease'"),
    ],
    ids=["first", "unsigned", "better", "tie", "tie-at-6-decimals", "worse", "no-score", "target-changed"],
)
def test_every_branch_of_the_gate(current: Champion | str | None, score: float, promoted: bool, reason: str) -> None:
    signed = current != "unsigned"  # a better-scored champion the app refuses is nothing to beat
    current = champion(0.99) if current == "unsigned" else current
    decision = gate(current, "4", score, "disease", signed=signed)
    assert decision.promoted is promoted
    assert reason in decision.reason
    assert decision.new_version == "4" and decision.new_score == score
    assert decision.champion_version == (None if current is None else "3")
    assert decision.champion_after() == ("4" if promoted else "3")


def test_a_version_without_tags_predicted_the_datasets_label() -> None:
    old = Champion.of(SimpleNamespace(version=2, tags={}))
    assert (old.version, old.score, old.target, old.fingerprint) == ("2", None, "output", None)
    new = Champion.of(
        SimpleNamespace(version=5, tags={"cv_roc_auc": "0.910000", "target": "disease", "fingerprint": "ab"})
    )
    assert (new.score, new.target, new.fingerprint) == (0.91, "disease", "ab")


def test_fingerprint_changes_with_each_part_of_what_makes_the_model() -> None:
    base = {"data_sha256": "a" * 64, "params": {"kernel": "rbf", "C": 1.0}, "folds": 5, "target": "disease"}
    same = fingerprint(**{**base, "params": {"C": 1.0, "kernel": "rbf"}})  # order does not matter
    assert fingerprint(**base) == same
    variants = [{"data_sha256": "b" * 64}, {"params": {"kernel": "rbf", "C": 2.0}}, {"folds": 3}, {"target": "output"}]
    assert len({fingerprint(**{**base, **change}) for change in variants} | {same}) == 5


class FakeClient:
    """The few MlflowClient calls the registry makes, in memory."""

    def __init__(self, alias_to: str | None, tags: dict[str, dict[str, str]]) -> None:
        self.alias_to, self.tags = alias_to, tags

    def get_model_version_by_alias(self, name: str, alias: str) -> Any:
        if self.alias_to is None:
            raise MlflowException("no alias", error_code=RESOURCE_DOES_NOT_EXIST)
        return SimpleNamespace(version=self.alias_to, tags=self.tags.get(self.alias_to, {}))

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self.tags.setdefault(version, {})[key] = value

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        self.alias_to = version


@pytest.mark.parametrize(
    ("new_score", "signed", "moves"), [(0.95, True, True), (0.85, True, False), (0.85, False, True)]
)
def test_promote_if_better_tags_the_version_and_moves_the_alias_only_when_promoted(
    new_score: float, signed: bool, moves: bool
) -> None:
    key = Ed25519PrivateKey.generate()
    tags = {"cv_roc_auc": "0.900000", "target": "disease"}
    if signed:
        tags[signing.TAG] = signing.sign(key, "M", "3", {SKOPS_FILE: "0" * 64})
    models = Registry("http://127.0.0.1:9", "M", "champion")
    models.client = FakeClient("3", {"3": tags})
    decision = models.promote_if_better("4", new_score, "disease", key.public_key())
    assert decision.promoted is moves
    assert models.client.tags["4"] == {"cv_roc_auc": f"{new_score:.6f}", "target": "disease"}
    assert models.champion_version() == ("4" if moves else "3")


def test_no_model_yet_is_no_champion_and_other_errors_are_raised() -> None:
    models = Registry("http://127.0.0.1:9", "M", "champion")
    models.client = FakeClient(None, {})
    assert models.champion() is None

    def broken(name: str, alias: str) -> Any:
        raise MlflowException("database is down", error_code=INTERNAL_ERROR)

    models.client.get_model_version_by_alias = broken
    with pytest.raises(MlflowException, match="database is down"):
        models.champion()


def test_skops_trusts_exactly_the_calibration_internals_of_the_pipeline() -> None:
    trusted = registry.trusted_sklearn_types(fit_pipeline())
    assert trusted and all(name.startswith("sklearn.") for name in trusted)
    assert any("Calibrat" in name or "Sigmoid" in name for name in trusted)


def _custom(x: Any) -> Any:
    return x


def test_a_pipeline_the_loader_would_refuse_is_not_registered() -> None:
    """The loader trusts only the calibration internals beyond skops' defaults: anything else fails here, early."""
    custom = make_pipeline(FunctionTransformer(_custom)).fit(training_rows())
    with pytest.raises(ValueError, match="types the app would refuse to load"):
        registry.trusted_sklearn_types(custom)


@pytest.fixture(scope="module")
def pipeline() -> Any:
    return fit_pipeline()


class Stored:
    """A version's files in a local folder, its tags, and the registry that loads it through a fake client."""

    def __init__(self, tmp_path: Path, pipeline: Any, key: Ed25519PrivateKey, verify_key: Path) -> None:
        self.folder = tmp_path / "stored"
        (self.folder / "extra_files").mkdir(parents=True)
        (self.folder / SKOPS_FILE).write_bytes(skops.io.dumps(pipeline))
        (self.folder / ONNX_FILE).write_bytes(b"a graph")
        self.files = signing.digests(self.folder, [SKOPS_FILE, ONNX_FILE])
        self.tags = {signing.TAG: signing.sign(key, "M", "5", self.files), registry.EXPORT_TAG: "exported"}
        self.downloads: list[list[str]] = []
        self.models = Registry("http://127.0.0.1:9", "M", "champion", verify_key=verify_key)
        self.models.client = SimpleNamespace(get_model_version=lambda name, version: SimpleNamespace(tags=self.tags))

    def download(self, client: Any, name: str, version: str, folder: str, uri: str, paths: list[str]) -> Path:
        self.downloads.append(paths)
        for path in paths:
            (Path(folder) / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.folder / path, Path(folder) / path)
        return Path(folder)


@pytest.fixture
def stored(tmp_path: Path, pipeline: Any, monkeypatch: pytest.MonkeyPatch) -> Stored:
    keys = tmp_path / "signing.pem", tmp_path / "verify.pem"
    signing.ensure_pair(*keys)
    found = Stored(tmp_path, pipeline, signing.load_signing_key(keys[0]), keys[1])
    monkeypatch.setattr(registry, "version_files", found.download)
    return found


def test_a_signed_version_loads_with_its_graph_and_only_its_signed_files_are_downloaded(
    stored: Stored, pipeline: Any
) -> None:
    loaded = stored.models.load("5")
    rows = training_rows().to_numpy(float)
    assert np.array_equal(loaded.pipeline.predict_proba(rows), pipeline.predict_proba(rows))
    assert (loaded.graph, loaded.export_note) == (b"a graph", "exported")
    assert stored.downloads == [sorted([SKOPS_FILE, ONNX_FILE])]
    assert stored.models.signed_with(
        Champion("5", None, "disease", None, stored.tags[signing.TAG]),
        signing.load_verify_key(stored.models.verify_key),
    )


def test_an_unsigned_version_is_refused_before_anything_is_downloaded(stored: Stored) -> None:
    del stored.tags[signing.TAG]
    with pytest.raises(signing.Unsigned, match="M version 5: unsigned"):
        stored.models.load("5")
    assert stored.downloads == []
    assert not stored.models.signed_with(
        Champion("5", None, "disease", None, None), signing.load_verify_key(stored.models.verify_key)
    )


def test_a_pickle_put_in_place_of_a_signed_file_is_refused_and_never_deserialised(
    stored: Stored, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "owned"
    (stored.folder / SKOPS_FILE).write_bytes(f"cos\nsystem\n(S'touch {marker}'\ntR.".encode())
    monkeypatch.setattr(registry, "load_pipeline", lambda data: pytest.fail("deserialised before the check"))
    with pytest.raises(signing.Changed, match=r"model\.skops changed after signing"):
        stored.models.load("5")
    assert not marker.exists()


def test_without_a_verify_key_nothing_loads(stored: Stored) -> None:
    stored.models.verify_key = None
    with pytest.raises(signing.KeyMissing, match="HEARTRISK_MODEL_VERIFY_KEY_FILE"):
        stored.models.load("5")
    assert stored.downloads == []
