"""The gunicorn worker the app runs in: gunicorn's threaded worker, whose stop does not wait for idle clients.

gunicorn 26's threaded worker, once stopping, waits for every open connection to close before it exits, and an idle
kept-alive one sends nothing: whenever a client kept a connection open (a browser on the form, a program's HTTP
session, a proxy with upstream keep-alive), a stop took the whole graceful timeout (30 s; compose kills at 10 s); in
the tests, an app stopped after load was killed at 15 s. gunicorn 27 fixes that, and MLflow 3.17 requires gunicorn
below 27. Until MLflow allows it, this worker closes its idle connections at every turn of its loop once the stop
has begun; requests in flight still finish and are answered. A client that starts a request on an idle connection
at that very moment sees it closed, as when the 5 s keep-alive timeout closes it at any other time.

The check sits in the loop rather than in the signal handler: a SIGTERM that lands while the loop is putting a
just-answered connection back to idle (after gunicorn's "still alive?" check, before the connection is listed)
would miss that connection, and gunicorn's stop then waits for it in a select that nothing wakes.

Checked on gunicorn 26.2.0: it overrides ``ThreadWorker.murder_keepalived`` and sets the expiry of the connections
in ``keepalived_conns`` and ``pending_conns``, all internals of the ``gthread`` loop. It can go, with
``worker_class`` back to ``gthread``, when the Pipfile moves to gunicorn 27 (once MLflow allows it).
"""

from __future__ import annotations

import time

from gunicorn.workers.gthread import ThreadWorker


class StoppingThreadWorker(ThreadWorker):
    """gunicorn's ``gthread`` worker; once stopping, its idle connections expire at once."""

    def murder_keepalived(self) -> None:
        """Close expired idle connections; once stopping, every idle one has expired (the loop calls this after
        each wake-up, and the stop's own wake-up guarantees one)."""
        if not self.alive:
            now = time.monotonic()
            for conn in (*self.keepalived_conns, *self.pending_conns):
                conn.timeout = min(conn.timeout, now)
        super().murder_keepalived()
