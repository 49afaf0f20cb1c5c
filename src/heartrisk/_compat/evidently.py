"""Evidently's folder workspace, without the parts a monitoring run pays for and does not use; and the
snapshots of a remote workspace, which its SDK cannot list or delete yet.

Checked on Evidently 0.7.23: the folder classes lean on ``LocalState`` (an internal store, with the private
path helpers ``_snapshot_dir`` and ``_snapshot_path``) and on what ``Workspace.__init__`` sets;
:class:`RemoteSnapshots` on the routes of the ``evidently ui`` service.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import requests
from evidently.core.serialization import SnapshotModel
from evidently.legacy.utils import NumpyEncoder
from evidently.ui.service.storage.common import SECRET_HEADER_NAME
from evidently.ui.storage.local.base import LocalState
from evidently.ui.workspace import Workspace


class SnapshotFiles(LocalState):
    """Evidently's workspace files, with each run's snapshot written in one piece.

    ``LocalState.write_snapshot`` gives the open file to ``json.dump``, which encodes in pure Python and
    writes each of its pieces through fsspec: about 110 000 writes for one run's snapshot, two thirds of
    the time a run spent adding itself to the workspace. ``json.dumps`` makes the same text with the
    standard library's C encoder, written at once.

    Can go when ``LocalState.write_snapshot`` writes the text in one piece (``json.dumps``, orjson).
    """

    def write_snapshot(self, project_id: Any, snapshot_id: Any, snapshot: SnapshotModel) -> None:
        text = json.dumps(snapshot.dict(), cls=NumpyEncoder)
        self.location.makedirs(self._snapshot_dir(project_id))
        with self.location.open(self._snapshot_path(project_id, snapshot_id), "w") as file:
            file.write(text)


class FolderWorkspace(Workspace):
    """Evidently's workspace in a folder, for what a run does: projects, dashboards, runs.

    Evidently's own ``Workspace`` also makes its dataset manager when created, and that parses every
    snapshot kept in the folder (about 0.1 s each here: seconds a run after a few months of daily
    runs). Projects, dashboards and runs need only the files (:class:`SnapshotFiles`), all this one makes;
    ``add_run`` reaches the dataset manager only with ``include_data=True``.

    Can go when ``Workspace`` makes its dataset manager on first use, or Evidently offers a workspace
    without one.
    """

    def __init__(self, path: str) -> None:  # no super().__init__(): that is the part left out
        self.path = path
        self.state = SnapshotFiles(path)


class RemoteSnapshots:
    """The snapshots of one project of a remote ``evidently ui``: listed with their times, deleted one by one.

    Checked on Evidently 0.7.23: ``RemoteWorkspace.list_runs`` and ``RemoteWorkspace.delete_run`` raise
    ``NotImplementedError`` ("todo: snapshot api"), while the service answers ``GET
    /api/projects/{project}/snapshots`` (each snapshot's id and timestamp) and ``DELETE
    /api/projects/{project}/{snapshot}`` (a write: the secret goes in the header the SDK's own writes use).
    Its UI lists and deletes runs through the same two routes.

    Can go when ``RemoteWorkspace`` implements ``list_runs`` (with the runs' times) and ``delete_run``.
    """

    def __init__(self, base_url: str, secret: str, project_id: Any, *, timeout: float = 30) -> None:
        self.project = f"{base_url.rstrip('/')}/api/projects/{project_id}"
        self.headers = {SECRET_HEADER_NAME: secret} if secret else {}
        self.timeout = timeout

    def times(self) -> dict[str, datetime]:
        """Each snapshot's id and the time its report ran (as Evidently stored it: naive means local time)."""
        answer = requests.get(f"{self.project}/snapshots", headers=self.headers, timeout=self.timeout)
        answer.raise_for_status()
        return {item["id"]: datetime.fromisoformat(item["timestamp"]) for item in answer.json()}

    def delete(self, snapshot_id: str) -> None:
        answer = requests.delete(f"{self.project}/{snapshot_id}", headers=self.headers, timeout=self.timeout)
        answer.raise_for_status()
