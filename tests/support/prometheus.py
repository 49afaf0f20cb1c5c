"""Prometheus's HTTP API as the Docker layouts' checks read it (tests/stack/)."""

from __future__ import annotations

from typing import Any

import requests


def query(url: str, expr: str, auth: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    """The result of an instant query of the Prometheus at ``url``."""
    answer = requests.get(f"{url}/api/v1/query", params={"query": expr}, auth=auth, timeout=30)
    answer.raise_for_status()
    return answer.json()["data"]["result"]


def jobs_up(url: str, auth: tuple[str, str] | None = None) -> set[str]:
    """The jobs with at least one target that answered its last scrape."""
    return {r["metric"]["job"] for r in query(url, "up == 1", auth)}


def targets(url: str, auth: tuple[str, str] | None = None) -> list[tuple[str, str, str, str]]:
    """Every target scraped: job, address, health and its last error (for a failure's message)."""
    active = requests.get(f"{url}/api/v1/targets", auth=auth, timeout=30).json()["data"]["activeTargets"]
    return [(t["labels"]["job"], t["scrapeUrl"], t["health"], t["lastError"]) for t in active]


def alert_rules(url: str, auth: tuple[str, str] | None = None) -> set[str]:
    """The names of the alerting rules Prometheus has loaded."""
    groups = requests.get(f"{url}/api/v1/rules", auth=auth, timeout=30).json()["data"]["groups"]
    return {rule["name"] for group in groups for rule in group["rules"] if rule["type"] == "alerting"}
