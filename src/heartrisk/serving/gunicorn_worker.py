"""The gunicorn worker the app runs in: gunicorn's threaded worker, whose stop does not wait for idle clients.

gunicorn 26's threaded worker, once stopping, waits for every open connection to close before it exits, and an idle
kept-alive one sends nothing: whenever a client kept a connection open (a browser on the form, a program's HTTP
session, a proxy with upstream keep-alive), a stop took the whole graceful timeout (30 s; compose kills at 10 s); in
the tests, an app stopped after load was killed at 15 s. gunicorn 27 fixes that, and MLflow 3.17 requires gunicorn
below 27. Until MLflow allows it, this worker closes its idle connections as the stop begins; requests in flight
still finish and are answered. A client that starts a request on an idle connection at that very moment sees it
closed, as when the 5 s keep-alive timeout closes it at any other time.
"""

from __future__ import annotations

import time
from types import FrameType

from gunicorn.workers.gthread import ThreadWorker


class StoppingThreadWorker(ThreadWorker):
    """gunicorn's ``gthread`` worker; on SIGTERM its idle connections expire at once."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        now = time.monotonic()
        for conn in (*self.keepalived_conns, *self.pending_conns):
            conn.timeout = min(conn.timeout, now)
