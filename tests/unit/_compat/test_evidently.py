"""Evidently's folder workspace without its dataset manager, and snapshots written in one piece.

Checked on Evidently 0.7.23: these tests fail when ``LocalState``'s private path helpers, its writer or what
``Workspace.__init__`` sets change, and say whether the compat class can go or needs a look.
"""

from __future__ import annotations

import inspect
import uuid
from pathlib import Path

import pytest
from evidently.ui.storage.local.base import LocalState
from evidently.ui.workspace import RemoteWorkspace, Workspace

from heartrisk._compat.evidently import FolderWorkspace, SnapshotFiles
from heartrisk.evidently_report import compute_drift
from heartrisk.schema import FEATURE_NAMES
from tests.support.frames import synthetic, with_predictions


def a_snapshot_model():
    reference = with_predictions(synthetic(5)[list(FEATURE_NAMES)], 5)
    current = with_predictions(synthetic(6)[list(FEATURE_NAMES)], 6)
    return compute_drift(current, reference, 0.5, versions={"3": len(current)})[1].to_snapshot_model()


def test_the_private_path_helpers_still_name_a_runs_snapshot_file(tmp_path: Path) -> None:
    state = LocalState(str(tmp_path))
    assert state._snapshot_dir("p") == "p/snapshots"
    assert state._snapshot_path("p", "s") == "p/snapshots/s.json"


def test_a_snapshot_file_is_the_text_evidentlys_own_writer_makes(tmp_path: Path) -> None:
    model = a_snapshot_model()
    project, run = uuid.uuid4(), uuid.uuid4()
    SnapshotFiles(str(tmp_path / "ours")).write_snapshot(project, run, model)
    LocalState(str(tmp_path / "evidently")).write_snapshot(project, run, model)
    path = Path(str(project), "snapshots", f"{run}.json")
    ours = (tmp_path / "ours" / path).read_bytes()
    assert len(ours) > 10_000 and ours == (tmp_path / "evidently" / path).read_bytes()


def test_evidentlys_writer_still_streams_the_snapshot_through_json_dump() -> None:
    source = inspect.getsource(LocalState.write_snapshot)
    assert "json.dump(" in source, (
        "LocalState.write_snapshot no longer streams json.dump into the file (it did on 0.7.23): time it, and "
        "drop heartrisk._compat.evidently.SnapshotFiles if it now writes the text in one piece"
    )


def test_the_workspace_makes_only_its_files_and_what_folder_workspace_leaves_out(tmp_path: Path) -> None:
    made = set(vars(Workspace(str(tmp_path / "evidently"))))
    assert made == {"path", "state", "datasets", "dataset_links", "artifacts", "prompts", "configs"}, (
        "Workspace.__init__ sets other attributes than on 0.7.23: check that FolderWorkspace, which sets only "
        "path and state, still has what list_projects, create_project and add_run use"
    )
    assert inspect.signature(Workspace.add_run).parameters["include_data"].default is False
    ours = FolderWorkspace(str(tmp_path / "ours"))
    assert set(vars(ours)) == {"path", "state"} and isinstance(ours.state, SnapshotFiles)


def test_the_remote_workspace_still_cannot_list_or_delete_runs() -> None:
    """Why RemoteSnapshots exists (it is exercised against a real ``evidently ui`` in tests/unit/purge)."""
    workspace = RemoteWorkspace("http://127.0.0.1:1", verify=False)
    for call in (lambda: workspace.list_runs("p"), lambda: workspace.delete_run("p", "s")):
        with pytest.raises(NotImplementedError):
            call()  # when this stops raising, heartrisk._compat.evidently.RemoteSnapshots can go
