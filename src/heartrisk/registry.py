"""The MLflow model registry, and the only code that talks to it: log and load models by version, the
champion alias, and the promotion gate.

Training registers and gates, the app follows the champion, the tests and benchmarks register their
models the same way. Versions carry tags the gate reads: the CV score, the target the model predicts,
and a fingerprint of what produced it (data, parameters, target), so an identical retrain is noticed.

A version's ONNX export is a file beside the scikit-learn flavor of the same logged model (MLflow's
``extra_files``), not MLflow's onnx flavor: that flavor is a model of its own, with its own pyfunc,
so it would be a second model to register and keep in step, and the app makes its own ONNX Runtime
session anyway (one thread). One model, one download: the export can never belong to another
version. Whether a version has one, and why not, is in its tags and in the MLmodel metadata.

Every version this code registers is signed (:mod:`heartrisk.signing`), and :meth:`Registry.load` reads a
version only after its signature and files check out, then builds the pipeline with skops from the bytes
it checked, trusting only the types our code names: MLflow's own loader is never used, as it would
trust the types the model file lists for itself (and unpickles a pickle).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from heartrisk import export, signing, tracking
from heartrisk._compat.mlflow import log_sklearn, version_files
from heartrisk._compat.sklearn import CALIBRATION_INTERNALS
from heartrisk.settings import MlflowSettings
from heartrisk.summaries import Promotion

SCORE_TAG = "cv_roc_auc"
TARGET_TAG = "target"
FINGERPRINT_TAG = "fingerprint"
RUNTIME_TAG = "serving_runtime"  # onnxruntime, or scikit-learn when the version has no usable export
EXPORT_TAG = "onnx_export"  # the export's check, or why there is no export
LEGACY_TARGET = "output"  # versions registered before the tag existed predicted the dataset's label
MISSING = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")
SKOPS_FILE = "model.skops"  # the scikit-learn pipeline, as mlflow.sklearn saves it in the skops format
ONNX_FILE = f"extra_files/{export.FILE_NAME}"  # where MLflow keeps an extra file of the logged model


@dataclass(frozen=True)
class StoredModel:
    """What one registered version holds: its scikit-learn pipeline and, when the export passed, its ONNX graph."""

    pipeline: Any
    graph: bytes | None = None
    export_note: str = ""


@dataclass(frozen=True)
class Champion:
    """What the gate needs to know about the current champion, read from its version tags."""

    version: str
    score: float | None
    target: str
    fingerprint: str | None
    signature: str | None = None  # the signing tag's value: whose key vouches for the version, and for which files

    @classmethod
    def of(cls, version: ModelVersion) -> Champion:
        tags = version.tags or {}
        score = tags.get(SCORE_TAG)
        return cls(
            version=str(version.version),
            score=float(score) if score is not None else None,
            target=tags.get(TARGET_TAG, LEGACY_TARGET),
            fingerprint=tags.get(FINGERPRINT_TAG),
            signature=tags.get(signing.TAG),
        )


def fingerprint(*, data_sha256: str, params: dict[str, Any], folds: int, target: str) -> str:
    """What determines the fitted model: the same data, parameters, folds and target give the same model."""
    identity = {"data": data_sha256, "params": params, "folds": folds, "target": target}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def gate(current: Champion | None, version: str, score: float, target: str, *, signed: bool = True) -> Promotion:
    """The promotion rule: promote when at least as good as the champion, on a comparable score.

    Scores of models with different targets are not comparable, so a change of target always promotes;
    so does a champion without a recorded score, and one the stack's key does not vouch for (``signed``
    false: the app refuses it, so there is nothing to beat). Scores are compared at 6 decimals (as tagged).
    """
    if current is None:
        promoted, reason = True, "no champion yet"
    elif not signed:
        promoted = True
        reason = f"champion v{current.version} is not signed with this stack's key (the app refuses it): promoted"
    elif current.target != target:
        promoted = True
        reason = (
            f"the target changed from {current.target!r} (champion v{current.version}) to {target!r}: "
            "promoted without comparing scores"
        )
    elif current.score is None:
        promoted, reason = True, f"champion v{current.version} has no recorded {SCORE_TAG}"
    elif round(score, 6) >= round(current.score, 6):
        promoted, reason = True, f"CV ROC-AUC {score:.4f} >= champion v{current.version} {current.score:.4f}"
    else:
        promoted, reason = False, f"CV ROC-AUC {score:.4f} < champion v{current.version} {current.score:.4f}"
    return Promotion(
        promoted=promoted,
        new_version=str(version),
        new_score=score,
        champion_version=None if current is None else current.version,
        champion_score=None if current is None else current.score,
        reason=reason,
    )


def trusted_sklearn_types(pipeline: Any) -> list[str]:
    """The scikit-learn types of ``pipeline`` that skops does not trust by default, when the loader trusts them.

    The loader trusts :data:`~heartrisk._compat.sklearn.CALIBRATION_INTERNALS` and nothing else beyond
    skops' defaults, so a pipeline holding any other type is refused here, before it is registered.
    """
    import skops.io  # here, not above: its import walks every scikit-learn estimator (about 2.5 s of CPU)

    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(pipeline))
    if unknown := sorted(set(untrusted) - set(CALIBRATION_INTERNALS)):
        raise ValueError(f"pipeline holds types the app would refuse to load: {unknown}")
    return list(untrusted)


def load_pipeline(data: bytes) -> Any:
    """The pipeline from a skops file's bytes, built from skops' default types and ours only: no pickle."""
    import skops.io

    return skops.io.loads(data, trusted=list(CALIBRATION_INTERNALS))


def log_model(
    pipeline: Any,
    *,
    registered_name: str,
    signing_key: Ed25519PrivateKey,
    example: pd.DataFrame | None = None,
    exported: export.Export | None = None,
) -> str:
    """Log a fitted pipeline in the active MLflow run, register it and sign it; returns the new version.

    With ``exported`` (:func:`heartrisk.export.export`) a good ONNX graph is stored beside the
    pipeline; either way the version is tagged with the runtime that will serve it, and why, and
    signed over the SHA-256 of the files as they were uploaded. Requirements are given, not inferred
    (inference costs seconds per model). ``example`` gives the signature of the inputs but is not
    stored: MLflow would check it by loading the model through its own loader, which no process of
    ours allows (``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false``).
    """
    schema = None
    if example is not None:
        from mlflow.models import infer_signature

        schema = infer_signature(example, pipeline.predict_proba(example))
    runtime = exported.runtime if exported is not None else export.SKLEARN
    note = exported.note() if exported is not None else "not exported to ONNX; scikit-learn serves this version"
    with tempfile.TemporaryDirectory(prefix="heartrisk-onnx-") as tmp:
        extra = []
        if exported is not None and exported.graph is not None:
            extra = [str(Path(tmp) / export.FILE_NAME)]
            Path(extra[0]).write_bytes(exported.graph)
        info, files = log_sklearn(
            pipeline,
            paths=[SKOPS_FILE, *([ONNX_FILE] if extra else [])],
            name="model",
            signature=schema,
            registered_model_name=registered_name,
            pyfunc_predict_fn="predict_proba",
            pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_skops=True),
            skops_trusted_types=trusted_sklearn_types(pipeline),
            extra_files=extra or None,
            metadata={RUNTIME_TAG: runtime, EXPORT_TAG: note},
        )
    version = str(info.registered_model_version)
    client = MlflowClient()
    signed = signing.sign(signing_key, registered_name, version, files)
    for key, value in {RUNTIME_TAG: runtime, EXPORT_TAG: note, signing.TAG: signed}.items():
        client.set_model_version_tag(registered_name, version, key, value)
    return version


class Registry:
    """One registered model and its champion alias, on one tracking server."""

    def __init__(
        self,
        tracking_uri: str,
        name: str,
        alias: str,
        experiment: str | None = None,
        verify_key: Path | None = None,
    ) -> None:
        """``verify_key``: the public key file versions must be signed for; without one, nothing loads."""
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.name = name
        self.alias = alias
        self.experiment = experiment
        self.verify_key = verify_key

    @classmethod
    def of(cls, settings: MlflowSettings) -> Registry:
        return cls(
            settings.tracking_uri,
            settings.model_name,
            settings.champion_alias,
            settings.experiment_name,
            settings.model_verify_key_file,
        )

    def training(self) -> tracking.TrainingInProgress | None:
        """A training run of this model's experiment that is under way, if any (the app's advice says so)."""
        return None if self.experiment is None else tracking.training_in_progress(self.client, self.experiment)

    def champion(self) -> Champion | None:
        """The version the alias points to, or None when the model or alias does not exist yet."""
        try:
            return Champion.of(self.client.get_model_version_by_alias(self.name, self.alias))
        except MlflowException as exc:
            if exc.error_code in MISSING:
                return None
            raise

    def champion_version(self) -> str | None:
        found = self.champion()
        return None if found is None else found.version

    def load_sklearn(self, version: str | None = None) -> Any:
        """The scikit-learn pipeline of a version (the champion by default), verified as :meth:`load` does."""
        return self.load(version or self.client.get_model_version_by_alias(self.name, self.alias).version).pipeline

    def _key(self) -> Ed25519PublicKey:
        if self.verify_key is None:
            raise signing.KeyMissing("no model verify key is configured (HEARTRISK_MODEL_VERIFY_KEY_FILE)")
        return signing.load_verify_key(self.verify_key)  # read at each load: a new key needs no restart

    def check_signature(self, champion: Champion, key: Ed25519PublicKey | None = None) -> None:
        """Raise :class:`heartrisk.signing.Untrusted` unless ``key`` (by default this registry's verify key)
        vouches for the version's tag; its files are not read (:meth:`load` checks those)."""
        tags = {} if champion.signature is None else {signing.TAG: champion.signature}
        signing.check_tag(key or self._key(), tags, self.name, champion.version)

    def load(self, version: str) -> StoredModel:
        """What the app's model holder and the monitor call: the pipeline of one version and its ONNX graph.

        Verified before anything is deserialised: the signature on the version's tags first (an unsigned
        version is refused without a download), then the SHA-256 of each signed file, downloaded alone;
        the bytes checked are the bytes loaded. Raises :class:`heartrisk.signing.Untrusted` with the reason.
        By version, not alias: the alias moving during the download cannot mix versions.
        """
        tags = self.client.get_model_version(self.name, version).tags or {}
        files = signing.check_tag(self._key(), tags, self.name, version)
        if SKOPS_FILE not in files:
            raise ValueError(f"{self.name} version {version}: no {SKOPS_FILE} among its signed files {sorted(files)}")
        with tempfile.TemporaryDirectory(prefix="heartrisk-model-") as tmp:
            version_files(self.client, self.name, version, tmp, self.tracking_uri, sorted(files))
            content = signing.verified(files, Path(tmp), f"{self.name} version {version}")
        note = tags.get(EXPORT_TAG, "not exported to ONNX")
        return StoredModel(load_pipeline(content[SKOPS_FILE]), content.get(ONNX_FILE), note)

    def signed_with(self, champion: Champion, key: Ed25519PublicKey) -> bool:
        """Whether ``key`` vouches for the version's tag (training asks, before it skips an identical retrain)."""
        try:
            self.check_signature(champion, key)
        except signing.Untrusted:
            return False
        return True

    def tag(self, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(self.name, version, key, value)

    def promote_if_better(self, version: str, score: float, target: str, key: Ed25519PublicKey) -> Promotion:
        """Tag the version with its score and target, apply :func:`gate` (the champion's signature checked
        with ``key``), move the alias if promoted."""
        self.tag(version, {SCORE_TAG: f"{score:.6f}", TARGET_TAG: target})
        current = self.champion()
        signed = current is None or self.signed_with(current, key)
        decision = gate(current, version, score, target, signed=signed)
        if decision.promoted:
            self.client.set_registered_model_alias(self.name, self.alias, version)
        return decision
