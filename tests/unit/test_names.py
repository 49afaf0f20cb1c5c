"""The public names: kept as the original project's instructions use them, and prefect.yaml agrees."""

from __future__ import annotations

import ast

import yaml

from heartrisk import names
from heartrisk.config import get_settings
from tests.support.paths import ROOT


def test_the_original_projects_names_are_kept() -> None:
    assert names.TRAIN_DEPLOYMENT == "train-heart-attack-model"
    assert names.MONITOR_DEPLOYMENT == "monitor-heart-attack-data-drift"
    assert names.WORK_POOL == "zoompool"
    assert names.PURGE_DEPLOYMENT == "purge-old-predictions"
    assert names.TRAIN_EXPERIMENT == "heart-attack-hyperopt"
    assert (
        names.deployment_path(names.TRAIN_FLOW, names.TRAIN_DEPLOYMENT)
        == "heart-attack-training/train-heart-attack-model"
    )


def test_settings_default_to_these_names(monkeypatch) -> None:
    for variable in (
        "HEARTRISK_MODEL_NAME",
        "HEARTRISK_WORK_POOL",
        "HEARTRISK_EXPERIMENT",
        "HEARTRISK_TRAIN_DEPLOYMENT",
    ):
        monkeypatch.delenv(variable, raising=False)
    settings = get_settings()
    assert (settings.mlflow.model_name, settings.prefect.work_pool, settings.mlflow.experiment_name) == (
        names.MODEL,
        names.WORK_POOL,
        names.TRAIN_EXPERIMENT,
    )
    assert settings.prefect.train_deployment == f"{names.TRAIN_FLOW}/{names.TRAIN_DEPLOYMENT}"


def test_prefect_yaml_declares_the_deployments_and_flows_named_here() -> None:
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    declared = {d["name"]: d for d in spec["deployments"]}
    assert tuple(declared) == names.DEPLOYMENTS
    flows = {
        names.TRAIN_DEPLOYMENT: "TRAIN_FLOW",
        names.MONITOR_DEPLOYMENT: "MONITOR_FLOW",
        names.PURGE_DEPLOYMENT: "PURGE_FLOW",
    }
    for deployment, constant in flows.items():
        path, function = declared[deployment]["entrypoint"].split(":")
        tree = ast.parse((ROOT / path).read_text())
        flow = next(n for n in tree.body if isinstance(n, ast.AsyncFunctionDef) and n.name == function)
        decorator = next(d for d in flow.decorator_list if isinstance(d, ast.Call) and d.func.id == "flow")
        given = next(k.value for k in decorator.keywords if k.arg == "name")
        assert ast.unparse(given) == f"names.{constant}"
        assert declared[deployment]["work_pool"]["name"] == "{{ $HEARTRISK_WORK_POOL }}"
