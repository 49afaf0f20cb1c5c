"""The bootstrap's pieces: which deployments prefect.yaml declares, the URLs, an idempotent work pool, a
champion that counts only when this stack's key vouches for it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from heartrisk import registry, signing
from heartrisk.config import get_settings
from heartrisk.stack.bootstrap import Outcome, current_champion, declared_deployments, ensure_work_pool, urls

PREFECT_YAML = """
deployments:
  - name: present
    entrypoint: flows/here.py:flow
  - name: absent
    entrypoint: flows/missing.py:flow
"""


def test_deployments_whose_flow_file_exists_are_declared(tmp_path: Path) -> None:
    (tmp_path / "prefect.yaml").write_text(PREFECT_YAML)
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "here.py").write_text("")
    assert [d["name"] for d in declared_deployments(tmp_path)] == ["present"]


def test_the_four_user_interfaces() -> None:
    base = get_settings()
    found = urls(
        dataclasses.replace(
            base,
            app=dataclasses.replace(base.app, host="127.0.0.1", port=8002),
            mlflow=dataclasses.replace(base.mlflow, tracking_uri="http://m:5000/"),
            prefect=dataclasses.replace(base.prefect, api_url="http://p:4200/api"),
            evidently=dataclasses.replace(base.evidently, ui_url="http://127.0.0.1:8001/"),
        )
    )
    assert found == {
        "mlflow": "http://m:5000",
        "prefect": "http://p:4200",
        "app": "http://127.0.0.1:8002",
        "evidently": "http://127.0.0.1:8001",
    }


class Pools:
    def __init__(self, exists: bool, race: bool = False) -> None:
        self.exists, self.race, self.created, self.templates = exists, race, [], []

    def read_work_pool(self, name: str) -> Any:
        if not self.exists:
            raise ObjectNotFound(None)
        return name

    def create_work_pool(self, pool: Any) -> None:
        if self.race:
            raise ObjectAlreadyExists(None)
        self.created.append((pool.name, pool.type))
        self.templates.append(pool.base_job_template)


def test_the_work_pool_is_created_once() -> None:
    assert ensure_work_pool(Pools(exists=True), "zoompool") is False
    fresh = Pools(exists=False)
    assert ensure_work_pool(fresh, "zoompool") is True and fresh.created == [("zoompool", "process")]
    assert ensure_work_pool(Pools(exists=False, race=True), "zoompool") is False  # a worker made it meanwhile


def test_a_kubernetes_pool_is_made_with_the_template_file_it_is_given(tmp_path: Path) -> None:
    template = tmp_path / "template.json"
    template.write_text(json.dumps({"job_configuration": {"image": "x"}, "variables": {}}))
    made = Pools(exists=False)
    assert ensure_work_pool(made, "zoompool", "kubernetes", str(template)) is True
    assert made.created == [("zoompool", "kubernetes")] and made.templates == [json.loads(template.read_text())]
    with pytest.raises(ValueError, match="HEARTRISK_BASE_JOB_TEMPLATE"):
        ensure_work_pool(Pools(exists=False), "zoompool", "kubernetes")


def test_an_outcome_that_changed_nothing() -> None:
    assert Outcome().as_dict() == {
        "pool_created": False, "email_block_created": False, "deployed": [], "skipped": [], "training_run": None,
        "training_state": None, "champion_version": None, "urls": {},
    }  # fmt: skip


class Champions:
    """A registry whose champion, version 4, passes or fails the signature check as told."""

    def __init__(self, problem: Exception | None) -> None:
        self.problem = problem

    def champion(self) -> SimpleNamespace:
        return SimpleNamespace(version="4", signature=None)

    def check_signature(self, champion: SimpleNamespace) -> None:
        if self.problem is not None:
            raise self.problem


@pytest.mark.parametrize(
    ("problem", "version", "said"),
    [
        (None, "4", []),
        (signing.Unsigned("M version 4", "unsigned"), None, ["the champion cannot serve: M version 4: unsigned"]),
        (signing.KeyMissing("no model verify key at /k.pem"), "4", ["champion v4 not checked: no model verify key"]),
    ],
    ids=["signed", "unsigned: trained again, as on a fresh stack", "no key here: left alone"],
)
def test_a_champion_this_stacks_key_does_not_vouch_for_counts_as_none(
    monkeypatch: pytest.MonkeyPatch, problem: Exception | None, version: str | None, said: list[str]
) -> None:
    """A stack upgraded from before signing, or given a new key, trains a signed champion at its next start."""
    monkeypatch.setattr(registry.Registry, "of", classmethod(lambda cls, settings: Champions(problem)))
    lines: list[str] = []
    assert current_champion(get_settings().mlflow, lines.append) == version
    assert [line[: len(start)] for line, start in zip(lines, said, strict=True)] == said
