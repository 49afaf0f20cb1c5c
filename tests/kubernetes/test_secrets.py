"""No password in the repository or in a manifest: Secrets come from git-ignored files, settings name them as
{secret:NAME} (the file /run/secrets/NAME, mounted where it is named) or take them from the Secret itself."""

from __future__ import annotations

import base64
import copy
import re
import subprocess
from typing import Any

import yaml

from tests.support.compose import scale_env
from tests.support.kubernetes import PLACEHOLDER, SOURCE, Pod, env_of, find, mounted_secrets
from tests.support.paths import ROOT

EXPANSION = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def secret_variables(model: dict[str, Any], secrets: dict[str, str]) -> set[str]:
    """The variables that hold a password in compose (alone, or inside a URL or an auth string)."""
    tool = scale_env()
    values = [secrets[name] for name in tool.NAMES if name not in tool.FIXED]
    return {
        variable
        for service in model["services"].values()
        for variable, value in (service.get("environment") or {}).items()
        if any(secret in str(value) for secret in values)
    }


def secret_problems(docs: list[dict[str, Any]], pods: list[Pod], variables: set[str]) -> list[str]:
    """A password variable with a literal value; a {secret:NAME} not mounted where it is used; a reference to
    a Secret or key that does not exist."""
    problems = []
    keys = set(find(docs, "Secret", "heartrisk-secrets")["data"])
    for pod in pods:
        for container, _ in pod.containers():
            where = f"{pod.workload} {container['name']}"
            env, mounted = env_of(docs, container), mounted_secrets(docs, pod, container)
            for variable, value in env.items():
                if isinstance(value, dict):
                    ref = value.get("secretKeyRef")
                    if ref and ref["key"] not in find(docs, "Secret", ref["name"])["data"]:
                        problems.append(f"{where}: {variable} names a missing key {ref['name']}/{ref['key']}")
                    continue
                names = set(PLACEHOLDER.findall(value))
                refs = [env.get(name) for name in EXPANSION.findall(value)]  # Kubernetes's $(NAME) of earlier ones
                if variable in variables and not names and not (refs and all(isinstance(r, dict) for r in refs)):
                    problems.append(f"{where}: {variable} is a literal")
                problems += [
                    f"{where}: {variable} needs /run/secrets/{n}, not mounted" for n in sorted(names - mounted)
                ]
                problems += [f"{where}: {variable} names {n}, not in the Secret" for n in sorted(names - keys)]
    return problems


def test_every_password_is_a_file_or_a_reference(
    overlay: tuple[str, list[dict[str, Any]]], overlay_pods: list[Pod], compose: tuple[dict[str, Any], dict[str, str]]
) -> None:
    variables = secret_variables(*compose)
    assert {"MLFLOW_TRACKING_PASSWORD", "PREFECT_API_AUTH_STRING", "HEARTRISK_PREDICTIONS_DB"} <= variables
    assert secret_problems(overlay[1], overlay_pods, variables) == []


def test_a_literal_or_an_unmounted_secret_is_caught(
    manifests: dict[str, list[dict[str, Any]]], all_pods: dict[str, list[Pod]], compose: tuple[dict[str, Any], Any]
) -> None:
    variables = secret_variables(*compose)
    docs, pods = copy.deepcopy(manifests["disposable"]), copy.deepcopy(all_pods["disposable"])
    find(docs, "ConfigMap", "heartrisk-app")["data"]["MLFLOW_TRACKING_PASSWORD"] = "hunter2-but-longer"  # noqa: S105  # pragma: allowlist secret
    volume = next(
        v for v in next(p for p in pods if p.workload == "Deployment/prefect").spec["volumes"] if "secret" in v
    )
    volume["secret"]["items"] = [i for i in volume["secret"]["items"] if i["key"] != "prefect-db-password"]
    assert secret_problems(docs, pods, variables) == [
        "Deployment/app app: MLFLOW_TRACKING_PASSWORD is a literal",
        "Deployment/prefect prefect: PREFECT_API_DATABASE_CONNECTION_URL needs /run/secrets/prefect-db-password, "
        "not mounted",
    ]


def test_secrets_come_from_git_ignored_files_only() -> None:
    listed = [
        "git",
        "ls-files",
        "--cached",
        "--others",
        "--exclude-standard",
        str(SOURCE),
    ]  # what is or may be committed
    tracked = subprocess.run(listed, cwd=ROOT, capture_output=True, text=True, check=True)
    files = [ROOT / path for path in tracked.stdout.split()]
    manifests = [doc for path in files if path.suffix == ".yaml" for doc in yaml.safe_load_all(path.read_text()) if doc]
    assert [d for d in manifests if d.get("kind") == "Secret"] == []
    generators = [g for d in manifests if d.get("kind") == "Kustomization" for g in d.get("secretGenerator", [])]
    assert generators and all(set(g) <= {"name", "files", "type"} for g in generators)  # no literals, no env files
    sources = [path.split("=")[-1] for g in generators for path in g["files"]]
    assert all(path.startswith("secrets/") for path in sources)
    kustomizations = [p.parent for p in files if p.name == "kustomization.yaml"]
    candidates = [str(folder / path) for folder in kustomizations for path in sources]
    ignored = subprocess.run(["git", "check-ignore", *candidates], cwd=ROOT, capture_output=True, text=True)
    assert set(ignored.stdout.split()) == set(candidates)


def test_no_secret_value_is_in_a_tracked_file(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    """Placeholders here (random), or your real files when make k8s-check renders with them: none is committed."""
    values = {
        base64.b64decode(v).decode(errors="replace")
        for d in overlay[1]
        if d["kind"] == "Secret"
        for v in d["data"].values()
    }
    for value in (v.strip() for v in values if len(v.strip()) >= 12):
        found = subprocess.run(["git", "grep", "-q", "-F", "-e", value], cwd=ROOT, check=False)
        assert found.returncode == 1, f"a Secret's value is in a tracked file: git grep -F '{value[:4]}...'"
