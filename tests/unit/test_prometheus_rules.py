"""The Prometheus rules, checked and tested by promtool (Debian's ``prometheus`` package): syntax, the unit tests
in deploy/prometheus/tests, the scrape config; every alert named, labelled and linked to its runbook; and each
threshold pinned, since changing it makes the tests fail."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.paths import ROOT
from tests.support.servers import require

PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "rules.yml"
TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
OPERATIONS = ROOT / "docs" / "operations.md"
ALERTS = {  # the names runbooks and checks find them by (issue 35)
    "HeartRiskHighErrorRatio",
    "HeartRiskSlowAnswers",
    "HeartRiskLogUnavailable",
    "HeartRiskStaleChampion",
    "HeartRiskNoChampion",
    "HeartRiskModelRefused",
    "HeartRiskMonitoringStale",
    "HeartRiskPurgeStale",
    "HeartRiskBackupStale",
}


def promtool(*args: str | Path) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    require(binary is not None, "promtool is not installed (Debian: apt-get install prometheus)")
    return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, timeout=300, check=False)


def alert_rules() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_the_rules_are_valid() -> None:
    done = promtool("check", "rules", RULES)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_the_rules_pass_their_unit_tests() -> None:
    done = promtool("test", "rules", *TESTS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == len(TESTS)


def test_the_scrape_config_is_valid() -> None:
    config = PROMETHEUS / "prometheus.yml"
    if not config.is_file():
        pytest.skip("deploy/prometheus/prometheus.yml is not written yet (the stacks' side of issue 35)")
    done = promtool("check", "config", config)
    assert done.returncode == 0, done.stdout + done.stderr


def anchors(markdown: str) -> set[str]:
    """The anchors GitHub makes of a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", markdown, re.M)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def test_every_alert_is_defined_with_a_severity_and_a_runbook_that_exists() -> None:
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} == ALERTS
    known = anchors(OPERATIONS.read_text())
    for rule in rules:
        assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), rule["alert"]
        page, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert page == "docs/operations.md" and anchor == rule["alert"].lower() and anchor in known, rule["alert"]


def test_every_alert_is_tested_firing_and_quiet() -> None:
    cases = [case for path in TESTS for test in yaml.safe_load(path.read_text())["tests"]
             for case in test.get("alert_rule_test", [])]  # fmt: skip
    assert {c["alertname"] for c in cases if c["exp_alerts"]} == ALERTS
    assert {c["alertname"] for c in cases if not c["exp_alerts"]} == ALERTS


# A change of each alert's threshold or timing, and the test file that must then fail.
MUTATIONS = {
    "error ratio 1 % -> 2 %": ("heartrisk:http_5xx_ratio:rate1m > 0.01", "heartrisk:http_5xx_ratio:rate1m > 0.02",
                               "serving"),
    "error ratio for 5 min -> 6": ("> 0.01\n        for: 5m", "> 0.01\n        for: 6m", "serving"),
    "p99 SLO 250 ms -> 500 ms": ("p99_5m > 0.25", "p99_5m > 0.5", "serving"),
    "log refusals over 1 min -> 5": ('reason="log_unavailable"}[1m]', 'reason="log_unavailable"}[5m]', "serving"),
    "stale champion for 1 min -> 2": ("(heartrisk:model_champion:version > 0)\n          )\n        for: 1m",
                                      "(heartrisk:model_champion:version > 0)\n          )\n        for: 2m", "model"),
    "champion freshness 60 s -> 600 s": ("- 60)", "- 600)", "model"),
    "no model for 5 min -> 10": ('version{job="heartrisk-app"}) == 0\n        for: 5m',
                                 'version{job="heartrisk-app"}) == 0\n        for: 10m', "model"),
    "refused == 1 -> > 1": ("(heartrisk_model_refused{job=\"heartrisk-app\"}) == 1",
                            "(heartrisk_model_refused{job=\"heartrisk-app\"}) > 1", "model"),
    "monitoring 26 h -> 27 h": ('job="heartrisk_monitoring"}) > 26 * 3600', 'job="heartrisk_monitoring"}) > 27 * 3600',
                                "jobs"),
    "purge 2 days -> 3": ("> 2 * 86400", "> 3 * 86400", "jobs"),
    "backup 26 h -> 25 h": ('job="heartrisk_backup"}) > 26 * 3600', 'job="heartrisk_backup"}) > 25 * 3600', "jobs"),
}  # fmt: skip


@pytest.mark.parametrize(("before", "after", "tests"), MUTATIONS.values(), ids=MUTATIONS.keys())
def test_a_changed_threshold_fails_the_rule_tests(tmp_path: Path, before: str, after: str, tests: str) -> None:
    rules = RULES.read_text()
    assert rules.count(before) == 1, f"{before!r} is not in rules.yml once"
    (tmp_path / "rules.yml").write_text(rules.replace(before, after))
    (tmp_path / "tests").mkdir()
    copy = shutil.copy(PROMETHEUS / "tests" / f"{tests}.yml", tmp_path / "tests")
    assert promtool("check", "rules", tmp_path / "rules.yml").returncode == 0  # still valid: only the meaning changed
    done = promtool("test", "rules", copy)
    assert done.returncode != 0, done.stdout
    assert "FAILED" in done.stdout + done.stderr  # a test's verdict, not promtool unable to read the files
