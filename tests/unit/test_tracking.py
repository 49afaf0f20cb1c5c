"""MLflow tracking helpers: one request per batch, and how the app finds a training under way."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from heartrisk import tracking


class FakeClient:
    def __init__(self, runs: dict[str, list[Any]] | None = None) -> None:
        self.batches: list[tuple[str, list, list, list]] = []
        self.runs = runs or {}

    def log_batch(self, run_id: str, metrics: list, params: list, tags: list) -> None:
        self.batches.append((run_id, metrics, params, tags))

    def get_experiment_by_name(self, name: str) -> Any:
        return SimpleNamespace(experiment_id="1") if name == "train" else None

    def search_runs(self, ids: list[str], filter_string: str, order_by: list[str], max_results: int) -> list[Any]:
        assert "tags.`heartrisk.kind` = 'training'" in filter_string
        status = "RUNNING" if "'RUNNING'" in filter_string else "FINISHED"
        return self.runs.get(status, [])[:max_results]


def run(name: str, start: float, end: float | None = None) -> Any:
    return SimpleNamespace(info=SimpleNamespace(run_name=name, start_time=start * 1000, end_time=end and end * 1000))


def test_metrics_params_and_tags_go_in_one_batch() -> None:
    client = FakeClient()
    tracking.log_batch(client, "r", metrics={"a": 1, "b": 0.5}, params={"p": 3}, tags={"t": "x"}, step=2)
    ((run_id, metrics, params, tags),) = client.batches
    assert run_id == "r"
    assert [(m.key, m.value, m.step) for m in metrics] == [("a", 1.0, 2), ("b", 0.5, 2)]
    assert [(p.key, p.value) for p in params] == [("p", "3")]
    assert [(t.key, t.value) for t in tags] == [("t", "x")]


def test_a_training_under_way_is_found_with_the_last_duration() -> None:
    now = time.time()
    client = FakeClient(
        {"RUNNING": [run("hyperopt-50-trials", now - 20)], "FINISHED": [run("old", now - 900, now - 840)]}
    )
    found = tracking.training_in_progress(client, "train")
    assert found.run_name == "hyperopt-50-trials"
    assert abs(found.started - (now - 20)) < 1
    assert found.last_seconds == 60


def test_an_abandoned_or_missing_training_is_not_under_way() -> None:
    now = time.time()
    stale = FakeClient({"RUNNING": [run("crashed", now - 7200)]})
    assert tracking.training_in_progress(stale, "train") is None
    assert tracking.training_in_progress(FakeClient(), "train") is None
    assert tracking.training_in_progress(FakeClient(), "no-such-experiment") is None
