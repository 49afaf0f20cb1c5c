"""The Evidently workspace project of every run: made once with its panels, runs added and readable back with
Evidently's own API, links to the UI, and a remote workspace that is down said so."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from evidently.core.metric_types import CountValue
from evidently.ui.workspace import Workspace

from heartrisk import dashboard, names
from heartrisk.config import get_settings
from heartrisk.evidently_report import compute_drift
from heartrisk.schema import FEATURE_NAMES
from heartrisk.settings import EvidentlySettings
from tests.support.frames import synthetic, with_predictions
from tests.support.servers import free_port


@pytest.fixture
def settings(tmp_path: Path) -> EvidentlySettings:
    return dataclasses.replace(
        get_settings().evidently, workspace=str(tmp_path / "evidently"), ui_url="http://ui.test:8001/"
    )


def a_snapshot(seed: int):
    reference = with_predictions(synthetic(seed)[list(FEATURE_NAMES)], seed)
    current = with_predictions(synthetic(seed + 1)[list(FEATURE_NAMES)], seed + 1)
    return compute_drift(current, reference, 0.5, versions={"3": len(current)})[1]


def test_the_project_and_its_panels_are_made_once_and_missing_panels_come_back(settings) -> None:
    workspace = dashboard.open_workspace(settings)
    project = dashboard.ensure_project(workspace)
    again = dashboard.ensure_project(dashboard.open_workspace(settings))
    assert again.id == project.id
    projects = list(Workspace(settings.workspace).list_projects())
    assert [p.name for p in projects] == [names.EVIDENTLY_PROJECT]
    titles = [panel.title for panel in project.dashboard.model().panels]
    assert titles == [panel.title for panel in dashboard.panels()]
    assert {"Share of drifted input columns", "Drift score of each input column", "Rows per run",
            "Mean predicted probability and positive rate", "Prediction drift score"} <= set(titles)  # fmt: skip

    project.dashboard.delete_panel("Rows per run", project.dashboard.model().tabs[0].title)
    dashboard.ensure_project(workspace)
    restored = [panel.title for panel in project.dashboard.model().panels]
    assert sorted(restored) == sorted(titles)


def test_each_run_adds_a_snapshot_readable_with_evidentlys_api_and_linked_in_the_ui(settings) -> None:
    first = dashboard.add_run(settings, a_snapshot(1), "drift-1")
    second = dashboard.add_run(settings, a_snapshot(3), "drift-2")
    assert first["project_id"] == second["project_id"] and first["snapshot_id"] != second["snapshot_id"]
    assert second["url"] == f"http://ui.test:8001/projects/{second['project_id']}/reports/{second['snapshot_id']}"
    workspace = Workspace(settings.workspace)
    runs = workspace.list_runs(first["project_id"])
    assert sorted(map(str, runs)) == sorted([first["snapshot_id"], second["snapshot_id"]])
    stored = workspace.get_run(first["project_id"], first["snapshot_id"])
    assert stored.name == "drift-1" and stored.tags == ["model-v3"]
    kinds = {result.metric_value_location.metric.params["type"] for result in stored.metric_results.values()}
    assert {"evidently:metric_v2:WindowRows", "evidently:metric_v2:ModelVersionRows"} <= kinds


def test_every_panel_names_metrics_the_report_produces() -> None:
    """A panel whose metric or labels match nothing stays empty in the UI: match them as the workspace does
    (one point per single value, a count giving two: its count and its share)."""
    produced = []
    for result in a_snapshot(5).to_snapshot_model().metric_results.values():
        for value in (result.count, result.share) if isinstance(result, CountValue) else (result,):
            location = value.metric_value_location
            params = {key: str(item) for key, item in {**location.metric.params, **location.param}.items()}
            produced.append((params.pop("type"), params))
    for panel in dashboard.panels():
        for value in panel.values:
            if value.metric_labels.get("column") == "output":
                continue  # the label column of a CSV: never in served data
            found = [p for kind, p in produced if kind == value.metric and value.metric_labels.items() <= p.items()]
            assert found, (panel.title, value.legend)


def test_a_remote_workspace_that_does_not_answer_is_an_error_naming_it(settings) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(Exception, match=r"127\.0\.0\.1"):
        dashboard.open_workspace(dataclasses.replace(settings, workspace=url))
