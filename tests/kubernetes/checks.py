"""The rules every pod of the manifests follows, as functions that list what breaks them (empty: none), so a test
can assert both that the manifests pass and that a manifest broken on purpose does not."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.support.kubernetes import PLACES, Pod, project_version
from tests.support.paths import ROOT

URL = re.compile(r"(https?)://127\.0\.0\.1:(\d+)(/[\w/.-]*)")
DOCKERFILES = {"heartrisk-app": "Dockerfile.app", "heartrisk-mlflow": "Dockerfile.mlflow"}
DOCKERFILES |= {"heartrisk-prefect": "Dockerfile.prefect", "heartrisk-postgres": "Dockerfile.postgres"}
DOCKERFILES |= {"heartrisk-backup": "Dockerfile.mlflow"}
STAGES = {"heartrisk-backup": "backup"}  # an image built from a named stage (else the file's default, its last)


def dockerfile_text(image: str) -> str:
    """The image's own stage of its Dockerfile: what it inherits up to it, and the stage, not the later ones."""
    name = image.split(":")[0]
    text = (ROOT / DOCKERFILES[name]).read_text()
    if name not in STAGES:
        return text
    start = re.search(rf"^FROM \S+ AS {STAGES[name]}$", text, re.M)
    end = re.compile(r"^FROM ", re.M).search(text, start.end())
    return text[: end.start() if end else None]


def _locked(container: dict[str, Any], pod: Pod) -> list[str]:
    context, pod_context = container.get("securityContext", {}), pod.spec.get("securityContext", {})
    seccomp = context.get("seccompProfile", pod_context.get("seccompProfile", {})).get("type")
    wrong = {
        "runAsNonRoot": context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is not True,
        "readOnlyRootFilesystem": context.get("readOnlyRootFilesystem") is not True,
        "allowPrivilegeEscalation": context.get("allowPrivilegeEscalation") is not False,
        "capabilities drop ALL": context.get("capabilities", {}).get("drop") != ["ALL"]
        or bool(context.get("capabilities", {}).get("add")),
        "seccompProfile RuntimeDefault": seccomp != "RuntimeDefault",
        "runAsUser not root": context.get("runAsUser", pod_context.get("runAsUser")) == 0,
    }
    return [setting for setting, bad in wrong.items() if bad]


def _sized_and_pinned(container: dict[str, Any]) -> list[str]:
    resources = container.get("resources", {})
    missing = [f"requests.{r}" for r in ("cpu", "memory") if r not in resources.get("requests", {})]
    missing += ["limits.memory"] if "memory" not in resources.get("limits", {}) else []
    name, _, tag = container["image"].rpartition(":")
    if not name or "/" in tag or tag in ("", "latest") or tag != project_version():
        missing.append(f"image tag {project_version()} (not latest): {container['image']}")
    return missing


def container_problems(pod: Pod) -> list[str]:
    """Each container: non-root, read-only root, no capabilities, no privilege gained, RuntimeDefault seccomp,
    requests and a memory limit, our image by the project's version; a server (not a Job's, not an init
    container) with readiness and liveness probes."""
    problems = []
    for container, init in pod.containers():
        broken = _locked(container, pod) + _sized_and_pinned(container)
        if not init and not pod.runs_to_completion:
            broken += [probe for probe in ("readinessProbe", "livenessProbe") if probe not in container]
        problems += [f"{pod.workload} {container['name']}: {what}" for what in broken]
    if pod.spec.get("hostNetwork") or pod.spec.get("hostPID") or pod.spec.get("hostIPC"):
        problems.append(f"{pod.workload}: shares the node's namespaces")
    return problems + _unreadable(pod)


def _unreadable(pod: Pod) -> list[str]:
    """A secret or config volume whose files the non-root user cannot read: the kubelet makes them root's, in the
    pod's fsGroup, with the volume's mode."""
    fs_group = pod.spec.get("securityContext", {}).get("fsGroup")
    problems = []
    for volume in pod.spec.get("volumes", []):
        source = volume.get("secret") or volume.get("projected") or volume.get("configMap") or {}
        mode = source.get("defaultMode", 0o644)
        if not (mode & 0o004 or (mode & 0o040 and fs_group)):
            problems.append(f"{pod.workload}: volume {volume['name']} unreadable by its user (mode {mode:o})")
    return problems


def _dockerfile_check(image: str) -> tuple | None:
    """What the image's HEALTHCHECK asks; None for an image without one (the backup service's)."""
    found = re.search(r"HEALTHCHECK[^\[]*CMD (\[.*?\])\n", dockerfile_text(image), re.S)
    return _endpoint_of_command(json.loads(found.group(1))) if found else None


def _endpoint_of_command(command: list[str]) -> tuple:
    url = URL.search(" ".join(command))
    return (url.group(1), int(url.group(2)), url.group(3)) if url else tuple(command)


def _endpoint_of_probe(probe: dict[str, Any], container: dict[str, Any]) -> tuple:
    if "exec" in probe:
        return tuple(probe["exec"]["command"])
    get = probe["httpGet"]
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    return (get.get("scheme", "HTTP").lower(), ports.get(get["port"], get["port"]), get["path"])


def probe_problems(pods: list[Pod], model: dict[str, Any]) -> list[str]:
    """Each mirrored server's readiness probe asks what compose's health check asks (its image's when compose
    has none); its liveness probe asks that or its image's. A server with neither has no check to mirror (its
    probes must still be there: container_problems)."""
    problems = []
    for service, (workload, name) in PLACES.items():
        pod = next((p for p in pods if p.workload == workload), None)
        if pod is None or pod.runs_to_completion or name not in {c["name"] for c, init in pod.containers() if not init}:
            continue
        container = pod.container(name)
        image = _dockerfile_check(container["image"])
        test = model["services"][service].get("healthcheck", {}).get("test")
        compose = _endpoint_of_command(test) if test else image
        if compose is None:
            continue
        for probe, allowed in (("readinessProbe", {compose}), ("livenessProbe", {compose, image})):
            if probe in container and _endpoint_of_probe(container[probe], container) not in allowed:
                problems.append(f"{workload} {name}: {probe} asks {_endpoint_of_probe(container[probe], container)}")
    return problems
