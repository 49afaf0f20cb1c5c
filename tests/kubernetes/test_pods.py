"""Every pod of both overlays, the flow runs' Job included: locked down, sized, pinned, and probed where compose
checks each service's health; and the checks see a manifest broken on purpose."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from tests.kubernetes.checks import DOCKERFILES, container_problems, dockerfile_text, probe_problems
from tests.support.kubernetes import Pod

COMPONENTS = {"app", "mlflow", "prefect", "worker", "bootstrap", "evidently", "flow-run"}


def test_each_overlay_runs_the_scale_out_stacks_parts(overlay: tuple[str, Any], overlay_pods: list[Pod]) -> None:
    expected = COMPONENTS | ({"postgres", "s3"} if overlay[0] == "disposable" else set())
    assert {pod.component for pod in overlay_pods} == expected


def test_every_container_is_locked_down_sized_and_pinned(overlay_pods: list[Pod]) -> None:
    assert [problem for pod in overlay_pods for problem in container_problems(pod)] == []


def test_every_server_is_probed_where_compose_checks_its_health(
    overlay_pods: list[Pod], compose: tuple[dict[str, Any], dict[str, str]]
) -> None:
    assert probe_problems(overlay_pods, compose[0]) == []


DROP = object()
BREAKAGES = {  # what: (workload, container, the field, its new value or DROP, what the check then says)
    "a readiness probe removed": ("Deployment/app", "app", "readinessProbe", DROP, "readinessProbe"),
    "a liveness probe removed": ("Deployment/mlflow", "mlflow", "livenessProbe", DROP, "livenessProbe"),
    "the backups' probe removed": ("StatefulSet/postgres", "backup", "readinessProbe", DROP, "readinessProbe"),
    "a CPU request removed": ("Deployment/worker", "worker", "resources.requests.cpu", DROP, "requests.cpu"),
    "a memory request removed": ("Job/flow-run", "prefect-job", "resources.requests.memory", DROP, "requests.memory"),
    "a memory limit removed": ("Deployment/prefect", "prefect", "resources.limits.memory", DROP, "limits.memory"),
    "a writable root": ("Deployment/evidently", "evidently", "securityContext.readOnlyRootFilesystem", DROP,
                        "readOnlyRootFilesystem"),
    "a capability kept": ("Deployment/mlflow", "mlflow-setup", "securityContext.capabilities.add", ["NET_RAW"],
                          "capabilities drop ALL"),
    "privileges may be gained": ("Job/bootstrap", "bootstrap", "securityContext.allowPrivilegeEscalation", True,
                                 "allowPrivilegeEscalation"),
    "root allowed": ("Deployment/app", "app", "securityContext.runAsNonRoot", False, "runAsNonRoot"),
    "no seccomp profile": ("Deployment/worker", "sync-base-job-template", "securityContext.seccompProfile", DROP,
                           "seccompProfile"),
    "the latest tag": ("Deployment/app", "app", "image", "heartrisk-app:latest", "image tag"),
    "no tag": ("Deployment/prefect", "prefect", "image", "heartrisk-prefect", "image tag"),
    "a probe on another endpoint": ("Deployment/app", "app", "readinessProbe.httpGet.path", "/healthz",
                                    "readinessProbe asks"),
}  # fmt: skip


def breaking(container: dict[str, Any], field: str, value: Any) -> None:
    *parents, last = field.split(".")
    for part in parents:
        container = container[part]
    if value is DROP:
        del container[last]
    else:
        container[last] = value


def test_a_key_its_user_cannot_read_is_caught(all_pods: dict[str, list[Pod]]) -> None:
    job = copy.deepcopy(next(p for p in all_pods["production"] if p.workload == "Job/flow-run"))
    next(v for v in job.spec["volumes"] if v["name"] == "signing-key")["secret"]["defaultMode"] = 0o400
    assert container_problems(job) == ["Job/flow-run: volume signing-key unreadable by its user (mode 400)"]


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_a_manifest_broken_on_purpose_is_caught(
    breakage: str, all_pods: dict[str, list[Pod]], compose: tuple[dict[str, Any], dict[str, str]]
) -> None:
    workload, name, field, value, said = BREAKAGES[breakage]
    broken = copy.deepcopy(all_pods["disposable"])
    pod = next(p for p in broken if p.workload == workload)
    breaking(pod.container(name), field, value)
    if field == "securityContext.seccompProfile":
        del pod.spec["securityContext"]["seccompProfile"]  # the pod's own would still apply
    found = container_problems(pod) + probe_problems(broken, compose[0])
    assert any(name in problem and said in problem for problem in found), found


def test_each_container_runs_as_the_user_its_image_runs_as_under_compose(overlay_pods: list[Pod]) -> None:
    """The settings are those the compose stacks run the same images with (read-only root, no capabilities, no
    privileges gained, and the image's own non-root USER), so make scale-test has started each image so."""
    users = {image: re.findall(r"^USER (\d+)", dockerfile_text(image), re.M)[-1] for image in DOCKERFILES}
    for pod in overlay_pods:
        for container, _ in pod.containers():
            assert str(container["securityContext"]["runAsUser"]) == users[container["image"].split(":")[0]] != "0"
