"""Load for the fault and soak tests: concurrent clients, each request with its own id, and an account
of what happened to every request against the prediction log."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from heartrisk.predlog import PredictionLog

RECORD = {"age": 54, "sex": 1, "cp": 0, "trtbps": 130, "chol": 246, "fbs": 0, "restecg": 1, "thalachh": 150,
          "exng": 0, "oldpeak": 1.0, "slp": 1, "caa": 0, "thall": 2}  # fmt: skip


@dataclass
class Load:
    """``concurrency`` threads posting RECORD in a loop, each request with its own X-Request-ID."""

    url: str
    concurrency: int = 8
    results: list[tuple[str, int | str]] = field(default_factory=list)  # (request id, status or error)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            rid = uuid.uuid4().hex
            try:
                response = session.post(
                    f"{self.url}/api/v1/predict", json=RECORD, headers={"X-Request-ID": rid}, timeout=60
                )
                outcome: int | str = response.status_code
            except requests.RequestException as exc:
                outcome = type(exc).__name__
            with self._lock:
                self.results.append((rid, outcome))

    def __enter__(self) -> Load:
        for n in range(self.concurrency):
            thread = threading.Thread(target=self._run, name=f"load-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(90)

    def snapshot(self) -> list[tuple[str, int | str]]:
        with self._lock:
            return list(self.results)

    def ok(self) -> int:
        return sum(1 for _, outcome in self.snapshot() if outcome == 200)

    def wait_ok(self, more: int, *, timeout: float = 120) -> None:
        """Wait until ``more`` further requests have succeeded."""
        target = self.ok() + more
        wait_for(lambda: self.ok() >= target, timeout=timeout, what=f"{target} successful requests")


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise TimeoutError(f"waited {timeout} s for {what}")


def logged_request_ids(log: PredictionLog) -> set[str]:
    return set(log.read()["request_id"])


def account(load: Load, log: PredictionLog) -> dict[str, Any]:
    """What happened to every request: acknowledged, failed, and how that matches the prediction log."""
    results = load.snapshot()
    acknowledged = {rid for rid, outcome in results if outcome == 200}
    failed = [(rid, outcome) for rid, outcome in results if outcome != 200]
    logged = logged_request_ids(log)
    return {
        "sent": len(results),
        "acknowledged": len(acknowledged),
        "failed": len(failed),
        "failures": sorted({str(outcome) for _, outcome in failed}),
        "acknowledged_not_logged": len(acknowledged - logged),
        "logged_not_acknowledged": len({rid for rid, _ in failed} & logged),
    }
