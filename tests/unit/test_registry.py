"""The registry adapter: every branch of the promotion gate, fingerprints, tags, the skops trust list."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, RESOURCE_DOES_NOT_EXIST

from heartrisk import registry
from heartrisk.registry import Champion, Registry, fingerprint, gate
from tests.support.models import fit_pipeline


def champion(score: float | None = 0.9, target: str = "disease", version: str = "3") -> Champion:
    return Champion(version=version, score=score, target=target, fingerprint=None)


@pytest.mark.parametrize(
    ("current", "score", "promoted", "reason"),
    [
        (None, 0.5, True, "no champion yet"),
        (champion(0.9), 0.95, True, "CV ROC-AUC 0.9500 >= champion v3 0.9000"),
        (champion(0.9), 0.9, True, "CV ROC-AUC 0.9000 >= champion v3 0.9000"),  # a tie promotes
        (champion(0.9), 0.9000004, True, ">= champion v3"),  # equal at the 6 decimals tagged
        (champion(0.9), 0.8999, False, "CV ROC-AUC 0.8999 < champion v3 0.9000"),
        (champion(None), 0.5, True, "champion v3 has no recorded cv_roc_auc"),
        (champion(0.99, target="output"), 0.5, True, "the target changed from 'output' (champion v3) to 'disease'"),
    ],
    ids=["first", "better", "tie", "tie-at-6-decimals", "worse", "no-score", "target-changed"],
)
def test_every_branch_of_the_gate(current: Champion | None, score: float, promoted: bool, reason: str) -> None:
    decision = gate(current, "4", score, "disease")
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


@pytest.mark.parametrize(("new_score", "moves"), [(0.95, True), (0.85, False)])
def test_promote_if_better_tags_the_version_and_moves_the_alias_only_when_promoted(
    new_score: float, moves: bool
) -> None:
    models = Registry("http://127.0.0.1:9", "M", "champion")
    models.client = FakeClient("3", {"3": {"cv_roc_auc": "0.900000", "target": "disease"}})
    decision = models.promote_if_better("4", new_score, "disease")
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
