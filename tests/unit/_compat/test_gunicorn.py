"""The app's gunicorn worker: on SIGTERM its idle connections go at once, the busy ones are left to finish.

Checked on gunicorn 26.2.0. The worker drives internals of gunicorn's gthread loop (``murder_keepalived``,
``keepalived_conns``, ``pending_conns``): these tests fail when they change, and the last one when gunicorn
closes idle connections on a stop by itself, the day the subclass can go."""

from __future__ import annotations

import logging
import os
import selectors
import signal
import socket
from collections.abc import Iterator
from concurrent.futures import Future

import pytest
from gunicorn.config import Config
from gunicorn.workers.gthread import TConn, ThreadWorker

from heartrisk._compat.gunicorn import StoppingThreadWorker


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    made: list[socket.socket] = []
    yield made
    for sock in made:
        sock.close()


def _worker(cls: type[ThreadWorker], sockets: list[socket.socket]) -> tuple[ThreadWorker, list[TConn]]:
    """A worker as its run loop sees it: two idle kept-alive connections and one accepted but silent."""
    cfg = Config()
    worker = cls(1, os.getpid(), [], None, 30, cfg, logging.getLogger("test"))
    worker.poller = selectors.DefaultSelector()
    worker.method_queue.init()
    conns = []
    for queue in (worker.keepalived_conns, worker.keepalived_conns, worker.pending_conns):
        ours, client = socket.socketpair()
        sockets.append(client)
        conn = TConn(cfg, ours, ("127.0.0.1", 1), ("127.0.0.1", 2))
        conn.set_timeout()  # now + keepalive (5 s)
        queue.append(conn)
        worker.poller.register(ours, selectors.EVENT_READ)
        worker.nr_conns += 1
        conns.append(conn)
    return worker, conns


def test_a_stop_closes_the_idle_connections_at_the_next_turn_of_the_loop(sockets: list[socket.socket]) -> None:
    worker, conns = _worker(StoppingThreadWorker, sockets)
    worker.handle_exit(signal.SIGTERM, None)
    worker.murder_keepalived()  # what the run loop does after its next wake-up
    worker.murder_pending()
    assert not worker.alive
    assert worker.nr_conns == 0 and not worker.keepalived_conns and not worker.pending_conns
    assert all(conn.sock.fileno() == -1 for conn in conns)


def test_a_stop_that_lands_while_a_connection_goes_back_to_idle_still_closes_it(sockets: list[socket.socket]) -> None:
    """The race seen once in CI: SIGTERM after finish_request's "still alive?" check, before the just-answered
    connection is listed as idle; the signal's expiry cannot see it, the loop's next turn must."""
    worker, _ = _worker(StoppingThreadWorker, sockets)
    ours, client = socket.socketpair()
    sockets.append(client)
    answered = TConn(worker.cfg, ours, ("127.0.0.1", 1), ("127.0.0.1", 2))
    worker.nr_conns += 1
    keep_timeout = answered.set_timeout

    def signal_arrives() -> None:
        keep_timeout()
        worker.handle_exit(signal.SIGTERM, None)

    answered.set_timeout = signal_arrives  # type: ignore[method-assign]
    kept_alive: Future[bool] = Future()
    kept_alive.set_result(True)
    worker.finish_request(answered, kept_alive)
    assert answered in worker.keepalived_conns  # listed after the signal: the race happened
    worker.murder_keepalived()
    worker.murder_pending()
    assert worker.nr_conns == 0 and not worker.keepalived_conns and answered.sock.fileno() == -1


def test_gunicorns_own_worker_keeps_them_until_their_keep_alive_runs_out(sockets: list[socket.socket]) -> None:
    """Why the subclass exists: gunicorn 26 then waits for them in a select that nothing wakes."""
    worker, conns = _worker(ThreadWorker, sockets)
    worker.handle_exit(signal.SIGTERM, None)
    worker.murder_keepalived()
    worker.murder_pending()
    assert worker.nr_conns == 3 and all(conn.sock.fileno() != -1 for conn in conns), (
        "gunicorn's gthread worker now closes idle connections on a stop (it kept them on 26.2.0): "
        "heartrisk._compat.gunicorn can go, with worker_class back to gthread"
    )
    for conn in conns:
        conn.sock.close()
