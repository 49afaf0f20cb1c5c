"""The monitoring project's snapshots made before the cut-off go, in a folder workspace (Evidently's own API)
and in a remote ``evidently ui`` (its service routes, with the secret); other projects, and newer runs, stay."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from evidently.ui.workspace import RemoteWorkspace, Workspace

from heartrisk import dashboard, names
from heartrisk.config import BIN, get_settings
from heartrisk.evidently_report import compute_drift
from heartrisk.purge.snapshots import aware, purge_snapshots
from heartrisk.schema import FEATURE_NAMES
from heartrisk.settings import EvidentlySettings
from tests.support.frames import synthetic, with_predictions
from tests.support.servers import free_port, running

SECRET = "a-test-secret-for-writes"  # noqa: S105 # pragma: allowlist secret


def a_snapshot(seed: int):
    reference = with_predictions(synthetic(seed)[list(FEATURE_NAMES)], seed)
    current = with_predictions(synthetic(seed + 1)[list(FEATURE_NAMES)], seed + 1)
    return compute_drift(current, reference, 0.5, versions={"3": len(current)})[1]


def runs_around_a_cut_off(evidently: EvidentlySettings) -> tuple[list[str], datetime, list[str]]:
    """Two runs added as the monitoring flow adds them, the cut-off, then one more."""
    old = [dashboard.add_run(evidently, a_snapshot(seed), f"drift-old-{seed}")["snapshot_id"] for seed in (1, 3)]
    cut = datetime.now(UTC)
    new = [dashboard.add_run(evidently, a_snapshot(5), "drift-new")["snapshot_id"]]
    return old, cut, new


def test_a_folder_workspace_keeps_the_runs_after_the_cut_off_and_other_projects(tmp_path: Path) -> None:
    evidently = dataclasses.replace(get_settings().evidently, workspace=str(tmp_path / "evidently"))
    old, cut, new = runs_around_a_cut_off(evidently)
    workspace = Workspace(evidently.workspace)
    theirs = workspace.create_project("someone else's project")
    workspace.add_run(theirs.id, a_snapshot(7))
    swept = purge_snapshots(evidently, cut)
    assert swept.deleted == 2
    assert swept.where == f"the Evidently workspace {tmp_path / 'evidently'} (project {names.EVIDENTLY_PROJECT})"
    (ours,) = [p for p in workspace.list_projects() if p.name == names.EVIDENTLY_PROJECT]
    assert sorted(map(str, workspace.list_runs(ours.id))) == new
    assert len(workspace.list_runs(theirs.id)) == 1
    assert not any(Path(evidently.workspace, str(ours.id), "snapshots", f"{run}.json").exists() for run in old)
    assert purge_snapshots(evidently, cut).deleted == 0


def test_no_workspace_folder_holds_nothing(tmp_path: Path) -> None:
    evidently = dataclasses.replace(get_settings().evidently, workspace=str(tmp_path / "evidently"))
    assert purge_snapshots(evidently, datetime.now(UTC)).deleted == 0


@pytest.fixture(scope="module")
def evidently_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``evidently ui`` (``heartrisk evidently-ui``) on a free port, writes guarded by a secret."""
    folder = tmp_path_factory.mktemp("evidently-ui")
    port = free_port()
    command = [str(BIN / "heartrisk"), "evidently-ui", "--port", str(port), "--workspace", str(folder / "ws")]
    url = f"http://127.0.0.1:{port}"
    log = folder / "ui.log"
    with running(command, health=f"{url}/api/version", log=log, env={"EVIDENTLY_SECRET": SECRET}, timeout=120):
        yield url


def test_a_remote_workspace_loses_its_old_runs_through_the_service(evidently_ui: str) -> None:
    evidently = dataclasses.replace(get_settings().evidently, workspace=evidently_ui, secret=SECRET)
    old, cut, new = runs_around_a_cut_off(evidently)
    (project,) = [p for p in RemoteWorkspace(evidently_ui).list_projects() if p.name == names.EVIDENTLY_PROJECT]
    listed = requests.get(f"{evidently_ui}/api/projects/{project.id}/snapshots", timeout=10).json()
    assert sorted(s["id"] for s in listed) == sorted(old + new)
    assert all(aware(datetime.fromisoformat(s["timestamp"])) < cut for s in listed if s["id"] in old)

    without = dataclasses.replace(evidently, secret=SECRET.upper())
    with pytest.raises(requests.HTTPError, match=r"403|401"):
        purge_snapshots(without, cut)
    assert purge_snapshots(evidently, cut).deleted == 2
    listed = requests.get(f"{evidently_ui}/api/projects/{project.id}/snapshots", timeout=10).json()
    assert [s["id"] for s in listed] == new
