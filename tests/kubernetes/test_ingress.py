"""The Ingress in place of nginx: the same UIs (nginx.conf's upstreams that run in the cluster), over TLS, with the
same logins and limits, and nothing internal behind it."""

from __future__ import annotations

from typing import Any

from heartrisk.config import get_settings
from tests.support.kubernetes import PLACES, find
from tests.support.netpol import nginx_upstreams

ANNOTATION = "nginx.ingress.kubernetes.io/"


def ingresses(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "Ingress"}


def backends(ingress: dict[str, Any]) -> set[tuple[str, int]]:
    paths = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    return {(p["backend"]["service"]["name"], p["backend"]["service"]["port"]["number"]) for p in paths}


def test_the_ingress_serves_nginxs_uis_that_run_here_over_tls(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    docs = overlay[1]
    served = set().union(*(backends(i) for i in ingresses(docs).values()))
    assert served == {upstream for upstream in nginx_upstreams().values() if upstream[0] in PLACES}
    for ingress in ingresses(docs).values():
        hosts = {rule["host"] for rule in ingress["spec"]["rules"]}
        assert [set(t["hosts"]) for t in ingress["spec"]["tls"]] == [hosts]
        assert find(docs, "Secret", ingress["spec"]["tls"][0]["secretName"])["type"] == "kubernetes.io/tls"
        assert all(p["path"] == "/" for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"])


def test_the_evidently_ui_asks_for_the_admins_login_as_behind_nginx(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    docs = overlay[1]
    asked = {
        name
        for name, i in ingresses(docs).items()
        if i["metadata"]["annotations"].get(f"{ANNOTATION}auth-type") == "basic"
    }
    assert asked == {"evidently"}  # MLflow and Prefect ask for their own; the form and API for none
    login = ingresses(docs)["evidently"]["metadata"]["annotations"][f"{ANNOTATION}auth-secret"]
    assert set(find(docs, "Secret", login)["data"]) == {"auth"}


def test_nothing_internal_is_behind_a_service(
    overlay: tuple[str, list[dict[str, Any]]], compose: tuple[dict[str, Any], dict[str, str]]
) -> None:
    """The app's /metrics and detailed /readyz (its internal port) and MLflow's metrics port stay in the pod."""
    metrics = int(compose[0]["services"]["mlflow"]["environment"]["HEARTRISK_MLFLOW_METRICS_PORT"])
    internal = {get_settings().app.internal_port, metrics}
    services = [d for d in overlay[1] if d["kind"] == "Service"]
    exposed = {p["port"] for s in services for p in s["spec"]["ports"]} | {
        p["targetPort"] for s in services for p in s["spec"]["ports"] if isinstance(p["targetPort"], int)
    }
    assert exposed & internal == set()
    named = {p["targetPort"] for s in services for p in s["spec"]["ports"]} - exposed
    assert named <= {"http", "postgres", "s3"}  # the containers' public ports by name, never "metrics"


def test_the_app_ingress_has_the_proxys_limits(
    overlay: tuple[str, list[dict[str, Any]]], compose: tuple[dict[str, Any], dict[str, str]]
) -> None:
    proxy = compose[0]["services"]["proxy"]["environment"]
    annotations = ingresses(overlay[1])["app"]["metadata"]["annotations"]
    assert annotations[f"{ANNOTATION}proxy-body-size"] == proxy["HEARTRISK_MAX_REQUEST_BYTES"]
    assert annotations[f"{ANNOTATION}limit-rps"] == proxy["HEARTRISK_RATE_LIMIT"]
    burst = int(annotations[f"{ANNOTATION}limit-burst-multiplier"]) * int(annotations[f"{ANNOTATION}limit-rps"])
    assert burst == int(proxy["HEARTRISK_RATE_BURST"])
    assert annotations[f"{ANNOTATION}proxy-next-upstream"] == "error timeout"  # a sent POST is never replayed
