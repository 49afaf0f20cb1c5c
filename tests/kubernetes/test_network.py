"""The NetworkPolicies allow exactly the edges of the compose stack (derived from the compose files and nginx.conf
in tests/support/netpol.py, never listed twice), and every way out of the cluster is one we name."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.support.kubernetes import Pod, find
from tests.support.netpol import compose_edges, kubernetes_edges_expected, policy_edges, ways_out

# Ways out that compose has no service for: name resolution, the API the worker starts Jobs with, the mail relay.
EXTRAS = {"dns", "kubernetes-api", "smtp-relay"}
MANAGED = {"production": {"postgres", "s3"}, "disposable": set()}  # the edges between them are not the cluster's


def edge_problems(overlay: str, docs: list[dict[str, Any]], pods: list[Pod], model: dict[str, Any]) -> list[str]:
    """Edges the compose stack has and the policies block, edges they allow that it lacks, and ways out that are
    neither a managed service's (production) nor one of the EXTRAS. A managed service's own edges (PostgreSQL's
    WAL archive to the store) are its provider's."""
    managed = MANAGED[overlay]
    expected = {edge for edge in kubernetes_edges_expected(model) if edge[0] not in managed}
    inside = {edge for edge in expected if edge[1] not in managed}
    outside = {(source, target) for source, target, _ in expected if target in managed}
    allowed, out = policy_edges(docs, pods), ways_out(docs, pods)
    problems = [f"blocked: {a} -> {b}:{port}" for a, b, port in sorted(inside - allowed)]
    problems += [f"allowed, not in compose: {a} -> {b}:{port}" for a, b, port in sorted(allowed - inside)]
    problems += [f"no way out: {a} -> {b}" for a, b in sorted(outside - out)]
    problems += [f"way out, not in compose: {a} -> {b}" for a, b in sorted(out - outside) if b not in EXTRAS]
    return problems


def test_the_policies_allow_exactly_the_compose_edges(
    overlay: tuple[str, list[dict[str, Any]]], overlay_pods: list[Pod], compose: tuple[dict[str, Any], Any]
) -> None:
    assert edge_problems(overlay[0], overlay[1], overlay_pods, compose[0]) == []


def test_the_compose_edges_are_the_stacks(compose: tuple[dict[str, Any], Any]) -> None:
    """What the derivation finds, in the words of the issue: the app reaches PostgreSQL and MLflow only, and
    only MLflow's side and the backups (PostgreSQL's WAL archive, the backup service) reach the store."""
    edges = compose_edges(compose[0])
    assert {(target, port) for source, target, port in edges if source == "app"} == {
        ("postgres", 5432),
        ("mlflow", 5000),
    }
    assert {source for source, target, _ in edges if target == "s3"} == {"mlflow", "mlflow-setup", "postgres", "backup"}
    assert ("app", "prefect", 4200) not in edges  # named in its environment, but no network leads there


def _rules(docs: list[dict[str, Any]], policy: str, way: str) -> list[dict[str, Any]]:
    return find(docs, "NetworkPolicy", policy)["spec"][way]


ALLOW_ALL = {
    "kind": "NetworkPolicy",
    "metadata": {"name": "allow-all"},
    "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [{}], "egress": [{}]},
}
BREAKAGES = {
    "an egress rule removed": (lambda docs: _rules(docs, "app", "egress").pop(1), "blocked: app -> postgres:5432"),
    "an ingress peer removed": (
        lambda docs: _rules(docs, "prefect", "ingress")[0]["from"].pop(0),
        "blocked: ingress -> prefect:4200",
    ),
    "a policy removed": (
        lambda docs: docs.remove(find(docs, "NetworkPolicy", "evidently")),
        "blocked: ingress -> evidently:8001",
    ),
    "the store closed to the backups": (
        lambda docs: _rules(docs, "s3", "ingress")[0]["from"][0]["podSelector"]["matchExpressions"][0]["values"].remove(
            "postgres"
        ),
        "blocked: postgres -> s3:8333",
    ),
    "an allow-all policy added": (lambda docs: docs.append(ALLOW_ALL), "allowed, not in compose: app -> prefect:4200"),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_a_policy_broken_on_purpose_is_caught(
    breakage: str, manifests: dict[str, Any], all_pods: dict[str, list[Pod]], compose: tuple[dict[str, Any], Any]
) -> None:
    breaking, said = BREAKAGES[breakage]
    docs = copy.deepcopy(manifests["disposable"])
    breaking(docs)
    assert said in edge_problems("disposable", docs, all_pods["disposable"], compose[0])


def test_a_way_out_that_nobody_named_is_caught(
    manifests: dict[str, Any], all_pods: dict[str, list[Pod]], compose: tuple
) -> None:
    docs = copy.deepcopy(manifests["production"])
    find(docs, "NetworkPolicy", "to-managed-postgres")["spec"]["podSelector"] = {}  # every pod, the UI's too
    problems = edge_problems("production", docs, all_pods["production"], compose[0])
    assert "way out, not in compose: evidently -> postgres" in problems
