"""The bootstrap's pieces: which deployments prefect.yaml declares, the URLs, an idempotent work pool."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from heartrisk.config import get_settings
from heartrisk.stack.bootstrap import Outcome, declared_deployments, ensure_work_pool, urls

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
        self.exists, self.race, self.created = exists, race, []

    def read_work_pool(self, name: str) -> Any:
        if not self.exists:
            raise ObjectNotFound(None)
        return name

    def create_work_pool(self, pool: Any) -> None:
        if self.race:
            raise ObjectAlreadyExists(None)
        self.created.append((pool.name, pool.type))


def test_the_work_pool_is_created_once() -> None:
    assert ensure_work_pool(Pools(exists=True), "zoompool") is False
    fresh = Pools(exists=False)
    assert ensure_work_pool(fresh, "zoompool") is True and fresh.created == [("zoompool", "process")]
    assert ensure_work_pool(Pools(exists=False, race=True), "zoompool") is False  # a worker made it meanwhile


def test_an_outcome_that_changed_nothing() -> None:
    assert Outcome().as_dict() == {
        "pool_created": False, "email_block_created": False, "deployed": [], "skipped": [], "training_run": None,
        "training_state": None, "champion_version": None, "urls": {},
    }  # fmt: skip
