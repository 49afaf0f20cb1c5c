"""The Kubernetes work pool: its base job template (deploy/kubernetes/base/base-job-template.json) is
prefect-kubernetes's own with our defaults, and the Job it gives for a flow run runs our image with the command
the process worker runs, locked down like every pod, with no credential of the worker's in it."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import shlex
import uuid
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from heartrisk import names
from tests.kubernetes.checks import container_problems
from tests.support.kubernetes import SOURCE, Pod, base_job_template, find, flow_run_job, project_version
from tests.support.paths import ROOT

TEMPLATE = SOURCE / "base" / "base-job-template.json"
# The Kubernetes version whose schemas make k8s-check validates against
KUBERNETES_VERSION = re.search(r"^K8S_VERSION := (.+)$", (ROOT / "Makefile").read_text(), re.M).group(1)


def process_worker_command() -> list[str]:
    """What Prefect's process worker runs for a flow run (the compose and make-up layouts)."""
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.objects import FlowRun
    from prefect.workers.process import ProcessJobConfiguration, ProcessWorker

    template, unused = ProcessWorker.get_default_base_job_template(), PrefectClient("http://127.0.0.1:9/api")
    config = asyncio.run(ProcessJobConfiguration.from_template_and_values(template, {}, client=unused))
    config.prepare_for_flow_run(FlowRun(id=uuid.uuid4(), name="clever-fox", flow_id=uuid.uuid4()))
    return shlex.split(config.command)


def test_the_template_is_prefect_kubernetes_own_with_our_defaults() -> None:
    from prefect_kubernetes.worker import KubernetesWorker

    ours, theirs = (
        json.loads(TEMPLATE.read_text())["variables"],
        KubernetesWorker.get_default_base_job_template()["variables"],
    )
    strip = lambda schema: {k: {f: v for f, v in p.items() if f != "default"} for k, p in schema["properties"].items()}  # noqa: E731
    assert strip(ours) == strip(theirs)  # the same job variables, so deployments and the UI offer the same choices


def test_a_flow_runs_job_runs_our_image_with_the_process_workers_command(manifests: dict[str, Any]) -> None:
    docs = manifests["production"]
    job = flow_run_job(base_job_template(docs))["spec"]["template"]["spec"]["containers"][0]
    venv = re.search(r"VIRTUAL_ENV=(\S+)", (ROOT / "Dockerfile.prefect").read_text()).group(1)
    process = process_worker_command()
    assert job["args"][1:] == process[1:] == ["-m", "prefect.engine"]
    assert Path(job["args"][0]).parent == Path(venv, "bin") and Path(job["args"][0]).name.startswith("python")
    assert Path(process[0]).name.startswith("python")  # the interpreter of the worker's venv, in the image
    worker = find(docs, "Deployment", "worker")["spec"]["template"]["spec"]["containers"][0]
    assert job["image"] == worker["image"] == f"heartrisk-prefect:{project_version()}"


def test_the_workers_credential_stays_out_of_the_job(manifests: dict[str, Any]) -> None:
    """Prefect hands its worker's settings to each Job; the template drops the auth string, and the Job takes
    it from the Secret, so it is never written into a Job object."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL

    auth = f"heartrisk-admin:{secrets.token_urlsafe(16)}"
    job = flow_run_job(
        base_job_template(manifests["production"]),
        {PREFECT_API_URL: "http://prefect:4200/api", PREFECT_API_AUTH_STRING: auth},
    )
    assert auth.split(":")[1] not in json.dumps(job)
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PREFECT_API_AUTH_STRING"]["value"] == "$(HEARTRISK_ADMIN_USER):$(HEARTRISK_ADMIN_PASSWORD)"
    assert env["HEARTRISK_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "heartrisk-secrets",
        "key": "admin-password",
    }


def test_the_job_is_valid_kubernetes_but_for_prefect_kubernetes_own_two_fields(manifests: dict[str, Any]) -> None:
    """prefect-kubernetes 0.8 refuses a template without parallelism and completions in the pod's spec, where
    Kubernetes has no such fields: the API server drops them with a warning (strict validation names them)."""
    job = flow_run_job(base_job_template(manifests["production"]))
    with pytest.raises(kubernetes_validate.ValidationError, match=r"\('completions', 'parallelism' were unexpected\)"):
        kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)
    for field in ("completions", "parallelism"):
        del job["spec"]["template"]["spec"][field]
    kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert container_problems(Pod("Job/flow-run", labels, job["spec"]["template"]["spec"])) == []


def test_what_the_template_names_exists_in_both_overlays(manifests: dict[str, Any]) -> None:
    """kustomize does not read the JSON inside the ConfigMap: the names in it are checked here."""
    for docs in manifests.values():
        job = flow_run_job(base_job_template(docs))
        spec = job["spec"]["template"]["spec"]
        assert job["metadata"]["namespace"] == find(docs, "Namespace", "heartrisk")["metadata"]["name"]
        assert find(docs, "ServiceAccount", spec["serviceAccountName"])["automountServiceAccountToken"] is False
        for volume in spec["volumes"]:
            kind, name = next(((k, v) for k, v in volume.items() if k != "name"))
            wanted = {"secret": ("Secret", "secretName"), "configMap": ("ConfigMap", "name")}
            wanted |= {"persistentVolumeClaim": ("PersistentVolumeClaim", "claimName")}
            if kind in wanted:
                find(docs, wanted[kind][0], name[wanted[kind][1]])


def test_the_worker_syncs_the_template_into_the_pool_of_names_py(manifests: dict[str, Any]) -> None:
    pod = find(manifests["production"], "Deployment", "worker")["spec"]["template"]["spec"]
    sync, worker = pod["initContainers"][0], pod["containers"][0]
    template = {e["name"]: e["value"] for e in worker["env"]}["HEARTRISK_BASE_JOB_TEMPLATE"]
    script = sync["command"][-1]
    assert f"prefect work-pool update {names.WORK_POOL} --base-job-template {template}" in script
    mounted = {m["mountPath"] for m in sync["volumeMounts"]} & {m["mountPath"] for m in worker["volumeMounts"]}
    assert str(Path(template).parent) in mounted
    assert base_job_template(manifests["production"]) == json.loads(TEMPLATE.read_text())
    deployments = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    assert {d["work_pool"]["name"] for d in deployments} == {"{{ $HEARTRISK_WORK_POOL }}"}
    configured = {k for d in manifests["production"] if d["kind"] == "ConfigMap" for k in d.get("data", {})}
    assert "HEARTRISK_WORK_POOL" not in configured  # so the pool is names.WORK_POOL, the one the worker syncs


def test_every_image_is_tagged_with_the_projects_version() -> None:
    version = project_version()
    tags = {}
    for kustomization in SOURCE.rglob("kustomization.yaml"):
        tags |= {i["name"]: i["newTag"] for i in yaml.safe_load(kustomization.read_text()).get("images", [])}
    assert set(tags.values()) == {version}
    assert (
        json.loads(TEMPLATE.read_text())["variables"]["properties"]["image"]["default"]
        == f"heartrisk-prefect:{version}"
    )
    makefile = (ROOT / "Makefile").read_text()
    assert "pyproject.toml" in re.search(r"^K8S_TAG [:?]?= (.+)$", makefile, re.M).group(1)


def test_the_worker_watches_and_may_start_jobs_in_its_own_namespace_only(manifests: dict[str, Any]) -> None:
    docs = manifests["production"]
    namespace = find(docs, "Namespace", "heartrisk")["metadata"]["name"]
    worker = find(docs, "Deployment", "worker")["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in worker["containers"][0]["env"]}
    assert env["PREFECT_INTEGRATIONS_KUBERNETES_OBSERVER_NAMESPACES"] == namespace
    assert flow_run_job(base_job_template(docs))["metadata"]["namespace"] == namespace
    binding = find(docs, "RoleBinding", "heartrisk-worker")
    assert binding["roleRef"]["kind"] == "Role" and binding["subjects"][0]["name"] == worker["serviceAccountName"]
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
