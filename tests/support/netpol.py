"""Who may talk to whom: the edges the compose files allow and use, and the edges Kubernetes NetworkPolicies allow.

Compose: a service wants to reach the hosts its environment names (``scheme://host:port``, ``user@host:port``);
the edge exists when compose's networks let it: the two share a network, or the host is nginx (``proxy``) and
nginx's upstream for that port (deploy/nginx.conf) shares a network with it. Not every service that shares a
network connects (Docker's default network holds most of them), so "shares a network" alone would be looser than
the stack; not every name in an environment is reachable (the app has Prefect's URL, and no network to it). A
service naming itself is no edge: the store carries the backups' settings for its identities, not to call itself.

Kubernetes: an edge A -> B on port P exists when the policies that select A let it out to B on P (or none selects
A for egress) and the policies that select B let A in on P (or none selects B for ingress), as the API defines.
The ingress controller stands for nginx. A policy marked ``heartrisk.io/reaches: NAME`` lets pods out of the
cluster to NAME (an ipBlock): a managed service of compose's (postgres, s3) or what compose has none for.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.support.kubernetes import COMPONENT, Pod
from tests.support.paths import ROOT

# Compose services and the components (pod label app.kubernetes.io/component) that do their work in Kubernetes.
MIRRORED = {
    "app": ("app",),
    "mlflow": ("mlflow",),
    "mlflow-setup": ("mlflow",),  # each MLflow pod's init container
    "prefect": ("prefect",),
    "worker": ("worker", "flow-run"),  # the process worker ran the flows itself; Jobs run them here
    "bootstrap": ("bootstrap",),
    "evidently": ("evidently",),
    "postgres": ("postgres",),
    "s3": ("s3",),
    "backup": ("postgres",),  # a container of PostgreSQL's pod (it shares the data folder and the socket)
    "proxy": ("ingress",),
}
INGRESS = Pod("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx", COMPONENT: "ingress"}, {"containers": []})
NAMESPACES = {"heartrisk": {"kubernetes.io/metadata.name": "heartrisk"}}
NAMESPACES["ingress-nginx"] = {"kubernetes.io/metadata.name": "ingress-nginx"}
REACHES = "heartrisk.io/reaches"
ADDRESS = re.compile(r"(?:://|@)(?:[^@/\s]*@)?([a-z][a-z0-9-]*):(\d+)(?![\w.~-])")  # user:password@ skipped
Edge = tuple[str, str, int]


def nginx_upstreams(conf: Path = ROOT / "deploy" / "nginx.conf") -> dict[int, tuple[str, int]]:
    """nginx's port -> the service:port it passes to (the app's from nginx-start.sh's default)."""
    start = (ROOT / "deploy" / "nginx-start.sh").read_text()
    app = re.search(r"HEARTRISK_PROXY_APP_UPSTREAM:-([a-z0-9-]+:\d+)", start).group(1)
    upstreams = {}
    for server in conf.read_text().replace("@APP_UPSTREAM@", app).split("server {")[1:]:
        listen = re.search(r"listen (\d+)", server)
        target = re.search(r"set \$\w+ http://([a-z0-9-]+):(\d+);", server)
        if listen and target:
            upstreams[int(listen.group(1))] = (target.group(1), int(target.group(2)))
    return upstreams


def compose_edges(model: dict[str, Any]) -> set[Edge]:
    """(from, to, port) between compose services, as their environments use them and their networks allow."""
    services = model["services"]
    networks = {name: set(s.get("networks") or {"default"}) for name, s in services.items()}
    upstreams = nginx_upstreams()
    wanted = {(name, host, int(port)) for name, s in services.items() for value in (s.get("environment") or {}).values()
              for host, port in ADDRESS.findall(str(value))}  # fmt: skip
    wanted |= {("proxy", host, port) for host, port in upstreams.values()}
    edges = set()
    for source, host, port in wanted:
        if host == "proxy" and port in upstreams and networks[source] & networks["proxy"]:
            host, port = upstreams[port]
            source_nets = networks["proxy"]
        else:
            source_nets = networks[source]
        if host in services and host != source and source_nets & networks[host]:
            edges.add((source, host, port))
    return edges


def kubernetes_edges_expected(model: dict[str, Any]) -> set[Edge]:
    """The compose edges between mirrored services, as edges between Kubernetes components."""
    return {
        (a, b, port)
        for source, target, port in compose_edges(model)
        if source in MIRRORED and target in MIRRORED
        for a in MIRRORED[source]
        for b in MIRRORED[target]
    }


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for rule in selector.get("matchExpressions", []):
        present, value = rule["key"] in labels, labels.get(rule["key"])
        ok = {
            "In": present and value in rule.get("values", []),
            "NotIn": not present or value not in rule.get("values", []),
            "Exists": present,
            "DoesNotExist": not present,
        }[rule["operator"]]
        if not ok:
            return False
    return True


def _peer_matches(peer: dict[str, Any], pod: Pod, namespace: str) -> bool:
    if "ipBlock" in peer:  # an open block holds the pods' addresses too; a narrowed one is taken as outside
        return peer["ipBlock"]["cidr"] in ("0.0.0.0/0", "::/0") and not peer["ipBlock"].get("except")
    if "namespaceSelector" in peer:
        if not _selects(peer["namespaceSelector"], NAMESPACES[namespace]):
            return False
    elif namespace != "heartrisk":
        return False
    return _selects(peer.get("podSelector", {}), pod.labels)


def _port_matches(rule: dict[str, Any], port: int) -> bool:
    return not rule.get("ports") or any(p.get("port") == port for p in rule["ports"])


def _allowed(policies: list[dict[str, Any]], pod: Pod, peer: Pod, peer_ns: str, port: int, way: str) -> bool:
    """Whether the policies let ``peer`` in (way "Ingress") or ``pod`` out to it ("Egress") on ``port``."""
    key, side = ("ingress", "from") if way == "Ingress" else ("egress", "to")
    selecting = [
        p for p in policies if way in p["spec"]["policyTypes"] and _selects(p["spec"]["podSelector"], pod.labels)
    ]
    if not selecting:
        return True
    rules = [rule for p in selecting for rule in p["spec"].get(key, [])]
    if any(_port_matches(rule, port) and side not in rule for rule in rules):  # no peers named: every peer
        return True
    return any(_port_matches(rule, port) and any(_peer_matches(x, peer, peer_ns) for x in rule[side]) for rule in rules)


def policy_edges(docs: list[dict[str, Any]], pods: list[Pod]) -> set[Edge]:
    """(from, to, port) between components that the overlay's NetworkPolicies allow, to every declared port."""
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    edges = set()
    for target in pods:
        ports = {p["containerPort"] for c, _ in target.containers() for p in c.get("ports", [])}
        for source in [*pods, INGRESS]:
            namespace = "ingress-nginx" if source is INGRESS else "heartrisk"
            for port in ports:
                out = source is INGRESS or _allowed(policies, source, target, "heartrisk", port, "Egress")
                if out and _allowed(policies, target, source, namespace, port, "Ingress"):
                    edges.add((source.component, target.component, port))
    return edges


def ways_out(docs: list[dict[str, Any]], pods: list[Pod]) -> set[tuple[str, str]]:
    """(component, what) for each way out of the cluster; what is the policy's heartrisk.io/reaches, or
    ``unmarked`` for an ipBlock no marked policy explains."""
    found = set()
    for policy in (d for d in docs if d["kind"] == "NetworkPolicy"):
        blocks = [x for rule in policy["spec"].get("egress", []) for x in rule.get("to", []) if "ipBlock" in x]
        what = policy["metadata"].get("annotations", {}).get(REACHES, "unmarked")
        if blocks or what != "unmarked":
            found |= {(pod.component, what) for pod in pods if _selects(policy["spec"]["podSelector"], pod.labels)}
    return found
