"""Evidently's folder workspace, without the parts a monitoring run pays for and does not use.

Checked on Evidently 0.7.23: both classes lean on ``LocalState`` (an internal store, with the private path
helpers ``_snapshot_dir`` and ``_snapshot_path``) and on what ``Workspace.__init__`` sets.
"""

from __future__ import annotations

import json
from typing import Any

from evidently.core.serialization import SnapshotModel
from evidently.legacy.utils import NumpyEncoder
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
