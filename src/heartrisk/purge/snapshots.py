"""The Evidently snapshots of the monitoring project: one per monitoring run, with the statistics of the
served window (no rows), which the dashboard charts.

Only the project ``HeartRisk monitoring`` is purged; other projects of the workspace are not ours. A
snapshot's age is the time its report ran, as Evidently stored it. A folder workspace is read and trimmed
through Evidently's own workspace API (its ``evidently ui`` sees a deleted file go and drops the run); a
remote ``evidently ui`` through its service routes (:class:`heartrisk._compat.evidently.RemoteSnapshots`),
with the same secret the monitoring flow writes with.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from heartrisk import names
from heartrisk.purge.result import Swept
from heartrisk.settings import EvidentlySettings


def is_remote(workspace: str) -> bool:
    return workspace.startswith(("http://", "https://"))


def aware(moment: datetime) -> datetime:
    """Evidently stamps a report with ``datetime.now()``: a time without a zone is this host's local time."""
    return moment if moment.tzinfo is not None else moment.astimezone()


def purge_snapshots(evidently: EvidentlySettings, before: datetime) -> Swept:
    """Delete the monitoring project's snapshots of runs before ``before``; a workspace folder that does not
    exist holds none (no monitoring run compared data here yet)."""
    where = evidently.workspace
    if not is_remote(where) and not Path(where).is_dir():
        return Swept(0, f"{where} (no such folder)")
    from heartrisk import dashboard  # Evidently's workspace code (seconds of imports), only for this kind

    workspace = dashboard.open_workspace(evidently)
    deleted = 0
    for project in workspace.list_projects():
        if project.name == names.EVIDENTLY_PROJECT:
            deleted += _purge_project(evidently, workspace, project.id, before)
    return Swept(deleted, f"the Evidently workspace {where} (project {names.EVIDENTLY_PROJECT})")


def _purge_project(evidently: EvidentlySettings, workspace: Any, project_id: Any, before: datetime) -> int:
    if is_remote(evidently.workspace):
        from heartrisk._compat.evidently import RemoteSnapshots

        remote = RemoteSnapshots(evidently.workspace, evidently.secret, project_id)
        old = [snapshot for snapshot, ran in remote.times().items() if aware(ran) < before]
        for snapshot in old:
            remote.delete(snapshot)
        return len(old)
    old = [
        snapshot
        for snapshot in workspace.list_runs(project_id)
        if aware(workspace.get_run(project_id, snapshot).timestamp) < before
    ]
    for snapshot in old:
        workspace.delete_run(project_id, snapshot)
    return len(old)
