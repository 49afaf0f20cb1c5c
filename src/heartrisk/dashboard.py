"""The Evidently workspace project of every monitoring run, and its dashboard, as code.

Each monitoring run adds its Evidently snapshot to the project ``HeartRisk monitoring`` of a workspace:
a folder (``HEARTRISK_EVIDENTLY_WORKSPACE``, by default ``<state>/evidently``), or a remote ``evidently
ui`` given by its URL (writes there need its secret, Evidently's own ``EVIDENTLY_SECRET``). ``evidently
ui`` draws the panels below from the snapshots, so an operator sees trends (is age drifting a little
more every week? did the model's output move after a promotion?) where an e-mail shows one run.
:func:`ensure_project` creates the project and adds any missing panel, by title: the bootstrap and
every run call it, and a panel an operator added by hand is left alone.
"""

from __future__ import annotations

from typing import Any

from evidently.sdk.models import DashboardPanelPlot, PanelMetric
from evidently.sdk.panels import bar_plot_panel, line_plot_panel
from evidently.ui.workspace import Project, RemoteWorkspace, WorkspaceBase

from heartrisk import names
from heartrisk._compat.evidently import FolderWorkspace
from heartrisk.drift import COLUMN_METRIC, COUNT_METRIC, LABEL, PROBABILITY
from heartrisk.schema import COLUMNS
from heartrisk.settings import EvidentlySettings

DESCRIPTION = (
    "Every run of the monitoring flow heart-attack-drift-monitoring: served predictions of the window "
    "against data/reference.csv, inputs and the model's own output."
)
SCORES = "p-value for a reference of 1000 rows or fewer (drift below 0.05), distance above that (drift from 0.1)"


def panels() -> list[DashboardPanelPlot]:
    """The dashboard: input drift, prediction drift, the model's output, and the rows behind each run."""
    return [
        line_plot_panel(
            "Share of drifted input columns",
            [PanelMetric(legend="share", metric=COUNT_METRIC, metric_labels={"value_type": "share"})],
            "Per run; the alert fires when it reaches HEARTRISK_DRIFT_THRESHOLD (0.5 by default)",
            size="half",
        ),
        line_plot_panel(
            "Rows per run",
            [
                PanelMetric(legend="in the window", metric="WindowRows"),
                PanelMetric(legend="compared (a sample above HEARTRISK_DRIFT_MAX_ROWS)", metric="RowCount"),
            ],
            "Served predictions in the monitoring window, and the rows Evidently compared",
            size="half",
        ),
        line_plot_panel(
            "Drift score of each input column",
            [PanelMetric(legend=name, metric=COLUMN_METRIC, metric_labels={"column": name}) for name in COLUMNS],
            f"Per run: {SCORES}",
        ),
        line_plot_panel(
            "Prediction drift score",
            [
                PanelMetric(legend=f"{column} ({what})", metric=COLUMN_METRIC, metric_labels={"column": column})
                for column, what in ((PROBABILITY, "the verdict"), (LABEL, "shown beside it"))
            ],
            f"What the model said against the champion on the reference data: {SCORES}",
            size="half",
        ),
        line_plot_panel(
            "Mean predicted probability and positive rate",
            [
                PanelMetric(legend="mean probability", metric="MeanValue", metric_labels={"column": PROBABILITY}),
                PanelMetric(
                    legend="positive rate (label 1)",
                    metric="CategoryCount",
                    metric_labels={"column": LABEL, "value_type": "share"},
                ),
            ],
            "Probability of significant coronary artery disease, served in the window",
            size="half",
        ),
        bar_plot_panel(
            "Rows per model version",
            [PanelMetric(legend="rows", metric="ModelVersionRows")],
            "Served predictions of the window by model version: a drift that starts with a promotion shows here",
            stacked=True,
        ),
    ]


def open_workspace(evidently: EvidentlySettings) -> WorkspaceBase:
    """The workspace ``HEARTRISK_EVIDENTLY_WORKSPACE`` names: a remote ``evidently ui`` URL, or a folder."""
    where = evidently.workspace
    if where.startswith(("http://", "https://")):
        return RemoteWorkspace(where, secret=evidently.secret or None)
    return FolderWorkspace(where)


def ensure_project(workspace: WorkspaceBase) -> Project:
    """The monitoring project, created with its panels if missing; panels missing by title are added."""
    found = [project for project in workspace.list_projects() if project.name == names.EVIDENTLY_PROJECT]
    project = found[0] if found else workspace.create_project(names.EVIDENTLY_PROJECT, DESCRIPTION)
    present = {panel.title for panel in project.dashboard.model().panels}
    for panel in panels():
        if panel.title not in present:
            project.dashboard.add_panel(panel)
    return project


def snapshot_url(evidently: EvidentlySettings, project_id: Any, snapshot_id: Any) -> str:
    """The run's page in the UI, at the address people open (``HEARTRISK_EVIDENTLY_UI_URL``)."""
    return f"{evidently.ui_url.rstrip('/')}/projects/{project_id}/reports/{snapshot_id}"


def add_run(evidently: EvidentlySettings, snapshot: Any, name: str) -> dict[str, str]:
    """Add one run's snapshot to the project (made first if needed); returns its ids and its link."""
    workspace = open_workspace(evidently)
    project = ensure_project(workspace)
    ref = workspace.add_run(project.id, snapshot, name=name)
    return {
        "project_id": str(project.id),
        "snapshot_id": str(ref.id),
        "url": snapshot_url(evidently, project.id, ref.id),
    }
