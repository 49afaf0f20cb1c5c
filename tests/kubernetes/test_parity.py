"""Settings under the same names as compose: every variable a compose scale-out service sets, its Kubernetes
counterpart sets too, and no other (but the few that only Kubernetes needs, each with its reason)."""

from __future__ import annotations

import copy
from typing import Any

from tests.support.kubernetes import NOT_MIRRORED, PLACES, Pod, env_of, find

# Only Kubernetes needs these: the worker's pool is a Kubernetes pool, with the repository's job template, and the
# worker's observer of the Jobs watches its own namespace (the only one its Role reaches).
KUBERNETES_ONLY = {
    service: {"HEARTRISK_WORK_POOL_TYPE", "HEARTRISK_BASE_JOB_TEMPLATE"} for service in ("worker", "bootstrap")
}
KUBERNETES_ONLY["worker"].add("PREFECT_INTEGRATIONS_KUBERNETES_OBSERVER_NAMESPACES")
# Production runs none of these: its managed services take their place, and a managed service's own point-in-time
# backups take pgBackRest's (the backup service's), so MLflow's setup has no backups' bucket to restore objects from.
MANAGED = {"postgres", "s3", "backup"}
MANAGED_BACKUPS = {"HEARTRISK_BACKUP_S3_ENDPOINT", "HEARTRISK_BACKUP_BUCKET", "HEARTRISK_BACKUP_RETENTION_FULL"}
NOT_HERE = {"production": {"mlflow-setup": MANAGED_BACKUPS}, "disposable": {}}


def parity_problems(
    model: dict[str, Any], docs: list[dict[str, Any]], pods: list[Pod], overlay: str = "disposable"
) -> list[str]:
    """A variable set on one side only, per compose service that runs in this overlay (but those NOT_HERE)."""
    problems = []
    for service, (workload, name) in PLACES.items():
        pod = next((p for p in pods if p.workload == workload), None)
        if pod is None:
            continue
        here = set(env_of(docs, pod.container(name))) - KUBERNETES_ONLY.get(service, set())
        there = set(model["services"][service].get("environment") or {}) - NOT_HERE[overlay].get(service, set())
        problems += [f"{service}: {variable} only in compose" for variable in sorted(there - here)]
        problems += [f"{service}: {variable} only in Kubernetes" for variable in sorted(here - there)]
    return problems


def test_every_compose_service_has_a_place_or_a_reason(compose: tuple[dict[str, Any], dict[str, str]]) -> None:
    assert set(compose[0]["services"]) == set(PLACES) | NOT_MIRRORED


def test_only_the_managed_services_are_missing_from_production(all_pods: dict[str, list[Pod]]) -> None:
    for overlay, pods in all_pods.items():
        running = {service for service, (workload, _) in PLACES.items() if any(p.workload == workload for p in pods)}
        assert set(PLACES) - running == (MANAGED if overlay == "production" else set())


def test_the_same_variables_as_compose(
    overlay: tuple[str, list[dict[str, Any]]], overlay_pods: list[Pod], compose: tuple[dict[str, Any], Any]
) -> None:
    assert parity_problems(compose[0], overlay[1], overlay_pods, overlay[0]) == []


def test_the_flow_runs_jobs_get_the_workers_settings(all_pods: dict[str, list[Pod]]) -> None:
    """The process worker's flow runs inherited its environment; the Jobs read the same ConfigMap."""
    pods = {pod.workload: pod for pod in all_pods["production"]}
    worker = pods["Deployment/worker"].container("worker")
    job = pods["Job/flow-run"].container("prefect-job")
    assert job["envFrom"] == worker["envFrom"] == [{"configMapRef": {"name": "heartrisk-flows"}}]


def test_a_variable_added_to_one_layout_only_is_caught(
    manifests: dict[str, list[dict[str, Any]]], all_pods: dict[str, list[Pod]], compose: tuple[dict[str, Any], Any]
) -> None:
    model, docs, pods = copy.deepcopy(compose[0]), copy.deepcopy(manifests["disposable"]), all_pods["disposable"]
    model["services"]["app"]["environment"]["HEARTRISK_NEW_SETTING"] = "1"
    assert parity_problems(model, docs, pods) == ["app: HEARTRISK_NEW_SETTING only in compose"]
    find(docs, "ConfigMap", "heartrisk-flows")["data"]["HEARTRISK_OTHER_SETTING"] = "1"
    assert parity_problems(compose[0], docs, pods) == [
        "worker: HEARTRISK_OTHER_SETTING only in Kubernetes",
        "bootstrap: HEARTRISK_OTHER_SETTING only in Kubernetes",
    ]


def test_the_backups_settings_are_missing_from_production_only(
    manifests: dict[str, list[dict[str, Any]]], all_pods: dict[str, list[Pod]], compose: tuple[dict[str, Any], Any]
) -> None:
    """The disposable overlay's backups need their settings (production's reason does not cover it), and production
    gets none of them: there they would name a bucket that nothing backs up to."""
    pods = copy.deepcopy(all_pods["disposable"])
    setup = next(p for p in pods if p.workload == "Deployment/mlflow").container("mlflow-setup")
    setup["envFrom"].remove({"configMapRef": {"name": "heartrisk-backups"}})
    assert parity_problems(compose[0], manifests["disposable"], pods, "disposable") == [
        f"mlflow-setup: {variable} only in compose" for variable in sorted(MANAGED_BACKUPS)
    ]
    docs = copy.deepcopy(manifests["production"])
    find(docs, "ConfigMap", "heartrisk-mlflow-stores")["data"]["HEARTRISK_BACKUP_BUCKET"] = "heartrisk-backups"
    assert parity_problems(compose[0], docs, all_pods["production"], "production") == [
        "mlflow: HEARTRISK_BACKUP_BUCKET only in Kubernetes",
        "mlflow-setup: HEARTRISK_BACKUP_BUCKET only in Kubernetes",
    ]
