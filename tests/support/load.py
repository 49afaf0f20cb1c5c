"""Load for the fault and scale-out tests and the soak benchmark: concurrent clients, each request with its
own id, and an account of what happened to every request against the prediction log.

Each request carries an ``X-Request-ID`` of the client's; the app logs it beside the key it makes itself and
answers that key in its own ``X-Request-ID``. An acknowledged request is found in the log by the key the app
answered (what a client relies on); a request that got no answer has no key it knows of, so it is looked
for by the client's id.

Python clients take much of a small machine's CPU: throughput and latency figures come from wrk
(bench/_common.py), this is for what happens to each request."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests

from heartrisk.predlog import PredictionLog
from tests.support.predlog import logged

RECORD = {"age": 54, "sex": 1, "cp": 0, "trtbps": 130, "chol": 246, "fbs": 0, "restecg": 1, "thalachh": 150,
          "exng": 0, "oldpeak": 1.0, "slp": 1, "caa": 0, "thall": 2}  # fmt: skip


@dataclass(frozen=True)
class Sample:
    """One request as the client saw it."""

    rid: str  # the client's X-Request-ID
    outcome: int | str  # HTTP status, or the exception's name when there was no answer
    done: float  # time.time() when the answer (or the error) came
    latency: float  # seconds from sending to the answer
    served_by: str = ""  # X-Served-By: the replica a proxy sent it to ("" without a proxy)
    version: str = ""  # the model version of a 200 answer
    key: str = ""  # the app's key of the request: its answer's X-Request-ID ("" without an answer)


@dataclass
class Load:
    """``concurrency`` threads posting RECORD in a loop, each request with its own X-Request-ID.

    With ``limit``, the load stops by itself after that many requests in all (``wait_done``).
    """

    url: str
    concurrency: int = 8
    limit: int | None = None
    verify: str | bool = True  # requests' verify: the CA file of an https stack (the environment is not read)
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _pause: float = 0.0  # seconds each client waits between its requests (0: back to back); set by paced
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _started: int = 0

    def _ticket(self) -> bool:
        with self._lock:
            if self._stop.is_set() or (self.limit is not None and self._started >= self.limit):
                return False
            self._started += 1
            return True

    def _run(self) -> None:
        session = requests.Session()
        # Loopback, no proxy or netrc: and requests would otherwise iterate os.environ on every request, which
        # raced with a test setting a variable meanwhile (a load thread died of a KeyError in one scale run).
        session.trust_env = False
        session.verify = self.verify
        while self._ticket():
            rid = uuid.uuid4().hex
            served_by = version = key = ""
            sent = time.perf_counter()
            try:
                response = session.post(
                    f"{self.url}/api/v1/predict", json=RECORD, headers={"X-Request-ID": rid}, timeout=60
                )
                outcome: int | str = response.status_code
                served_by = response.headers.get("X-Served-By", "")
                key = response.headers.get("X-Request-ID", "")
                version = response.json().get("model_version", "") if outcome == 200 else ""
            except requests.RequestException as exc:
                outcome = type(exc).__name__
            with self._lock:
                self.samples.append(
                    Sample(rid, outcome, time.time(), time.perf_counter() - sent, served_by, str(version), key)
                )
            if self._pause:
                self._stop.wait(self._pause)

    @contextmanager
    def paced(self, pause: float) -> Iterator[None]:
        """Meanwhile each client waits ``pause`` s between requests: while a test only waits for something else
        (a replacement worker loading its model), the clients go on at a gentle rate instead of taking the CPU
        that the awaited thing needs."""
        self._pause = pause
        try:
            yield
        finally:
            self._pause = 0.0

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

    def stop(self, timeout: float) -> None:
        """End an open-ended load: no new request, and the ones in flight answered (or given up)."""
        self._stop.set()
        self.wait_done(timeout)

    def wait_done(self, timeout: float) -> None:
        """Wait until a bounded load has sent its ``limit`` requests and had their answers."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in self._threads):
            raise TimeoutError(f"the load did not finish within {timeout} s")

    def between(self, start: float, end: float) -> list[Sample]:
        """The requests answered from ``start`` to ``end`` (``time.time()``): one period of a soak."""
        with self._lock:
            return [sample for sample in self.samples if start <= sample.done < end]

    def in_flight(self, at: float) -> list[Sample]:
        """The requests sent before ``at`` (``time.time()``) and answered after it: those a fault at ``at`` caught
        mid-way, without which a fault test would prove nothing."""
        with self._lock:
            return [sample for sample in self.samples if sample.done - sample.latency < at < sample.done]

    def so_far(self) -> list[Sample]:
        """Every request answered or failed so far."""
        with self._lock:
            return list(self.samples)

    def snapshot(self) -> list[tuple[str, int | str]]:
        """(the client's id, the outcome) of every request answered or failed so far."""
        with self._lock:
            return [(sample.rid, sample.outcome) for sample in self.samples]

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


@dataclass(frozen=True)
class Logged:
    """What the prediction log holds of the requests: the app's keys, and the clients' ids beside them."""

    keys: set[str]
    client_ids: set[str]


def logged_ids(log: PredictionLog) -> Logged:
    rows = logged(log)
    return Logged(set(rows["request_id"]), set(rows["client_request_id"].dropna()))


def logged_request_ids(log: PredictionLog) -> set[str]:
    """The app's keys in the log."""
    return logged_ids(log).keys


def account(load: Load, log: PredictionLog | Logged) -> dict[str, Any]:
    """What happened to every request: acknowledged, failed, and how that matches the prediction log (a log to
    read, or what was read from it already). An acknowledged request is looked for by the key the app answered;
    a failed one, which may have been logged before its answer was lost, by the client's id."""
    samples = load.so_far()
    acknowledged = [sample for sample in samples if sample.outcome == 200]
    failed = [sample for sample in samples if sample.outcome != 200]
    found = log if isinstance(log, Logged) else logged_ids(log)
    return {
        "sent": len(samples),
        "acknowledged": len(acknowledged),
        "failed": len(failed),
        "failures": sorted({str(sample.outcome) for sample in failed}),
        "acknowledged_not_logged": sum(1 for sample in acknowledged if sample.key not in found.keys),
        "logged_not_acknowledged": len({sample.rid for sample in failed} & found.client_ids),
    }
