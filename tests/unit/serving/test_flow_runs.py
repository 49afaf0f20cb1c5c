"""What the app asks Prefect, and what it makes of the answer (a canned HTTP server stands in for Prefect;
tests/integration/test_stack.py asks a real one)."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from heartrisk.config import get_settings
from heartrisk.serving.flow_runs import KIND, queued_training
from heartrisk.settings import PrefectSettings
from tests.support.servers import free_port


class Canned(ThreadingHTTPServer):
    """Answers every POST with ``answer`` and keeps what it was asked; hands out CSRF token ``token``
    (None: answers 422, as Prefect does with the protection off) and refuses a POST without it."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.answer: list[dict[str, Any]] = []
        self.asked: list[tuple[str, dict[str, Any]]] = []
        self.token: str | None = "t0ken"  # noqa: S105 - a test token


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        assert self.path.startswith("/api/csrf-token?client=heartrisk-app-"), self.path
        if self.server.token is None:
            self.reply(422, {"detail": "CSRF protection is disabled."})
        else:
            self.reply(200, {"token": self.server.token, "client": self.path.rsplit("=", 1)[1]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.server.token is not None and self.headers.get("Prefect-Csrf-Token") != self.server.token:
            self.reply(403, {"detail": "Missing CSRF token."})
            return
        self.server.asked.append((self.path, body))
        self.reply(200, self.server.answer)

    def reply(self, status: int, answer: Any) -> None:
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def prefect() -> Iterator[Canned]:
    server = Canned()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def settings_for(port: int) -> PrefectSettings:
    return dataclasses.replace(get_settings().prefect, api_url=f"http://127.0.0.1:{port}/api")


def test_asks_for_due_unfinished_runs_of_the_training_deployment_only(prefect: Canned) -> None:
    assert queued_training(settings_for(prefect.server_address[1])) is None
    ((path, body),) = prefect.asked
    assert path == "/api/flow_runs/filter"
    assert body["flows"]["name"]["any_"] == ["heart-attack-training"]
    assert body["deployments"]["name"]["any_"] == ["train-heart-attack-model"]
    assert sorted(body["flow_runs"]["state"]["type"]["any_"]) == ["PENDING", "RUNNING", "SCHEDULED"]
    window = body["flow_runs"]["expected_start_time"]
    assert window["after_"] < window["before_"]  # not abandoned, and due now (not a later schedule)
    assert (body["sort"], body["limit"]) == ("EXPECTED_START_TIME_DESC", 1)


def test_a_pending_run_is_queued_since_it_was_due_and_a_running_one_started_when_it_started(prefect: Canned) -> None:
    settings = settings_for(prefect.server_address[1])
    due, began = "2026-12-01T10:00:00+00:00", "2026-12-01T10:00:20+00:00"
    prefect.answer = [
        {"name": "calm-fox", "state": {"type": "PENDING"}, "expected_start_time": due, "start_time": None}
    ]
    pending = queued_training(settings)
    assert (pending.run_name, pending.kind, pending.state, pending.last_seconds) == ("calm-fox", KIND, "queued", None)
    assert pending.started == datetime(2026, 12, 1, 10, tzinfo=UTC).timestamp()
    prefect.answer[0] |= {"state": {"type": "RUNNING"}, "start_time": began}
    running = queued_training(settings)
    assert (running.state, running.started) == ("started", pending.started + 20)


def test_a_prefect_without_csrf_protection_is_asked_without_a_token(prefect: Canned) -> None:
    prefect.token = None
    assert queued_training(settings_for(prefect.server_address[1])) is None
    assert [path for path, _ in prefect.asked] == ["/api/flow_runs/filter"]


def test_no_prefect_is_an_error_the_holder_treats_as_no_answer() -> None:
    with pytest.raises(requests.ConnectionError):
        queued_training(settings_for(free_port()), timeout=1)
