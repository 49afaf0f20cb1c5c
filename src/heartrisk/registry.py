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
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from heartrisk import export, tracking
from heartrisk._compat.mlflow import version_files
from heartrisk.settings import MlflowSettings
from heartrisk.summaries import Promotion

SCORE_TAG = "cv_roc_auc"
TARGET_TAG = "target"
FINGERPRINT_TAG = "fingerprint"
RUNTIME_TAG = "serving_runtime"  # onnxruntime, or scikit-learn when the version has no usable export
EXPORT_TAG = "onnx_export"  # the export's check, or why there is no export
LEGACY_TARGET = "output"  # versions registered before the tag existed predicted the dataset's label
MISSING = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")


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

    @classmethod
    def of(cls, version: ModelVersion) -> Champion:
        tags = version.tags or {}
        score = tags.get(SCORE_TAG)
        return cls(
            version=str(version.version),
            score=float(score) if score is not None else None,
            target=tags.get(TARGET_TAG, LEGACY_TARGET),
            fingerprint=tags.get(FINGERPRINT_TAG),
        )


def fingerprint(*, data_sha256: str, params: dict[str, Any], folds: int, target: str) -> str:
    """What determines the fitted model: the same data, parameters, folds and target give the same model."""
    identity = {"data": data_sha256, "params": params, "folds": folds, "target": target}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def gate(current: Champion | None, version: str, score: float, target: str) -> Promotion:
    """The promotion rule: promote when at least as good as the champion, on a comparable score.

    Scores of models with different targets are not comparable, so a change of target always promotes;
    so does a champion without a recorded score. Scores are compared at 6 decimals (as tagged).
    """
    if current is None:
        promoted, reason = True, "no champion yet"
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
    """The scikit-learn types skops does not trust by default (calibration internals), and only those."""
    import skops.io  # here, not above: its import walks every scikit-learn estimator (about 2.5 s of CPU)

    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(pipeline))
    foreign = [name for name in untrusted if not name.startswith("sklearn.")]
    if foreign:
        raise ValueError(f"pipeline holds non-scikit-learn types: {foreign}")
    return list(untrusted)


def log_model(
    pipeline: Any,
    *,
    registered_name: str,
    example: pd.DataFrame | None = None,
    exported: export.Export | None = None,
) -> str:
    """Log a fitted pipeline in the active MLflow run and register it; returns the new version.

    With ``exported`` (:func:`heartrisk.export.export`) a good ONNX graph is stored beside the
    pipeline; either way the version is tagged with the runtime that will serve it, and why.
    Requirements are given, not inferred (inference costs seconds per model), and the skops format
    trusts exactly the scikit-learn types the pipeline holds.
    """
    signature = None
    if example is not None:
        from mlflow.models import infer_signature

        signature = infer_signature(example, pipeline.predict_proba(example))
    runtime = exported.runtime if exported is not None else export.SKLEARN
    note = exported.note() if exported is not None else "not exported to ONNX; scikit-learn serves this version"
    with tempfile.TemporaryDirectory(prefix="heartrisk-onnx-") as tmp:
        extra = []
        if exported is not None and exported.graph is not None:
            extra = [str(Path(tmp) / export.FILE_NAME)]
            Path(extra[0]).write_bytes(exported.graph)
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=signature,
            input_example=example,
            registered_model_name=registered_name,
            pyfunc_predict_fn="predict_proba",
            pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_skops=True),
            skops_trusted_types=trusted_sklearn_types(pipeline),
            extra_files=extra or None,
            metadata={RUNTIME_TAG: runtime, EXPORT_TAG: note},
        )
    version = str(info.registered_model_version)
    client = MlflowClient()
    for key, value in {RUNTIME_TAG: runtime, EXPORT_TAG: note}.items():
        client.set_model_version_tag(registered_name, version, key, value)
    return version


class Registry:
    """One registered model and its champion alias, on one tracking server."""

    def __init__(self, tracking_uri: str, name: str, alias: str, experiment: str | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.name = name
        self.alias = alias
        self.experiment = experiment

    @classmethod
    def of(cls, settings: MlflowSettings) -> Registry:
        return cls(settings.tracking_uri, settings.model_name, settings.champion_alias, settings.experiment_name)

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
        """The scikit-learn pipeline of a version (the champion by default).

        By version, not alias, where it matters: the alias moving during the download cannot mix versions.
        """
        import mlflow.sklearn

        with tempfile.TemporaryDirectory(prefix="heartrisk-model-") as tmp:
            return mlflow.sklearn.load_model(str(self._download(version, tmp)))

    def _download(self, version: str | None, folder: str) -> Path:
        """The logged model's files, from this registry's server (MLflow's global tracking URI is left alone).

        Not through a ``models:/`` URI: :func:`heartrisk._compat.mlflow.version_files` says why.
        """
        version = version or self.client.get_model_version_by_alias(self.name, self.alias).version
        return version_files(self.client, self.name, version, folder, self.tracking_uri)

    def load(self, version: str) -> StoredModel:
        """What the app's model holder calls: the pipeline of one version and its ONNX graph, if any.

        One download of the logged model: the graph is the file stored beside the pipeline.
        """
        import mlflow.sklearn
        from mlflow.models import Model

        with tempfile.TemporaryDirectory(prefix="heartrisk-model-") as tmp:
            local = self._download(version, tmp)
            pipeline = mlflow.sklearn.load_model(str(local))
            stored = Model.load(str(local))
            files = [Path(extra["path"]) for extra in stored.flavors["sklearn"].get("extra_files", [])]
            graph = next((local / f for f in files if f.name == export.FILE_NAME), None)
            note = (stored.metadata or {}).get(EXPORT_TAG, "not exported to ONNX")
            return StoredModel(pipeline, graph.read_bytes() if graph is not None else None, note)

    def tag(self, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(self.name, version, key, value)

    def promote_if_better(self, version: str, score: float, target: str) -> Promotion:
        """Tag the version with its score and target, apply :func:`gate`, move the alias if promoted."""
        self.tag(version, {SCORE_TAG: f"{score:.6f}", TARGET_TAG: target})
        decision = gate(self.champion(), version, score, target)
        if decision.promoted:
            self.client.set_registered_model_alias(self.name, self.alias, version)
        return decision
