"""The MLflow model registry: who is champion, promote only when at least as good, load by alias."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

SCORE_TAG = "cv_roc_auc"
TARGET_TAG = "target"
LEGACY_TARGET = "output"  # versions registered before the tag existed predicted the dataset's label


@dataclass(frozen=True)
class Decision:
    """Outcome of the promotion gate, logged to MLflow and shown to the person who trained."""

    promoted: bool
    new_version: str
    new_score: float
    champion_version: str | None
    champion_score: float | None
    reason: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def champion(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version that alias points to, or None when the model or alias does not exist yet."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def version_score(version: ModelVersion) -> float | None:
    """The CV ROC-AUC recorded on a model version when it was registered."""
    value = (version.tags or {}).get(SCORE_TAG)
    return float(value) if value is not None else None


def version_target(version: ModelVersion) -> str:
    """What a version predicts: its target tag, or the dataset's label for versions older than the tag."""
    return (version.tags or {}).get(TARGET_TAG, LEGACY_TARGET)


def promote_if_better(client: MlflowClient, name: str, alias: str, version: str, score: float, target: str) -> Decision:
    """Move ``alias`` to ``version`` if its score is at least the current champion's.

    Scores of models with different targets are not comparable: a change of target always promotes.
    """
    client.set_model_version_tag(name, version, SCORE_TAG, f"{score:.6f}")
    client.set_model_version_tag(name, version, TARGET_TAG, target)
    current = champion(client, name, alias)
    current_score = version_score(current) if current is not None else None
    if current is None:
        promoted, reason = True, "no champion yet"
    elif version_target(current) != target:
        promoted = True
        reason = (
            f"the target changed from {version_target(current)!r} (champion v{current.version}) to {target!r}: "
            "promoted without comparing scores"
        )
    elif current_score is None:
        promoted, reason = True, f"champion v{current.version} has no recorded {SCORE_TAG}"
    elif round(score, 6) >= round(current_score, 6):
        promoted, reason = True, f"CV ROC-AUC {score:.4f} >= champion v{current.version} {current_score:.4f}"
    else:
        promoted, reason = False, f"CV ROC-AUC {score:.4f} < champion v{current.version} {current_score:.4f}"
    if promoted:
        client.set_registered_model_alias(name, alias, version)
    return Decision(
        promoted=promoted,
        new_version=str(version),
        new_score=score,
        champion_version=None if current is None else str(current.version),
        champion_score=current_score,
        reason=reason,
    )


def model_uri(name: str, alias: str) -> str:
    return f"models:/{name}@{alias}"


def load_champion_sklearn(name: str, alias: str):
    """Load the champion as its scikit-learn pipeline (``predict_proba`` without pyfunc overhead)."""
    return mlflow.sklearn.load_model(model_uri(name, alias))
