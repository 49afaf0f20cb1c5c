"""The monitoring flow's own logic, without Prefect: the summary built once, what the e-mail says was done,
the log line, and the frozen heap."""

from __future__ import annotations

import gc
from pathlib import Path

import pandas as pd

from heartrisk.monitoring import flow
from heartrisk.monitoring.current import Current
from heartrisk.monitoring.report import Compared, Kept
from heartrisk.monitoring.rules import Decision
from heartrisk.summaries import DashboardEntry, Failed, Retraining, TrackedRun
from tests.unit.monitoring.results import result

WINDOW = Current(pd.DataFrame({"age": range(300)}), "prediction log", 300, {"3": 300})
COMPARED = Compared(WINDOW, "ref.csv", 303, 0.5)
KEPT = Kept(Path("/state/reports/drift-1.html"), TrackedRun("r1", "http://mlflow/r1"), Failed("workspace full"))


def test_a_run_with_too_little_data_has_a_summary_without_a_report() -> None:
    summary = flow.summarize(COMPARED, None, Decision("not enough data", True, False), None, None, {})
    assert (summary.share, summary.status, summary.current_rows, summary.model_versions) == (
        None, "not enough data", 300, {"3": 300})  # fmt: skip
    assert flow.message(summary, None, 400, "train").subject == "HeartRisk: not enough data (300 of 400 rows)"
    assert flow.log_line(COMPARED, None, Decision("not enough data", True, False), 400).startswith("Not enough data")


def test_the_summary_holds_each_step_typed_and_the_json_keeps_its_shape() -> None:
    drifted = result(0.6)
    summary = flow.summarize(COMPARED, drifted, Decision("drift", True, True), KEPT, Failed("no pool"), {})
    assert summary.latest_report == "/state/reports/latest.html" and summary.run_url == "http://mlflow/r1"
    assert summary.problems == {"Evidently's workspace": "workspace full"}
    shown = summary.to_json()
    assert shown["mlflow"] == {"run_id": "r1", "run_url": "http://mlflow/r1"}
    assert shown["dashboard"] == {"error": "workspace full"} and shown["retraining"] == {"error": "no pool"}
    message = flow.message(summary, drifted, 30, "train-deployment")
    assert message.subject == "HeartRisk: drift detected (60% of columns)"
    assert "Retraining could NOT be started (train-deployment): no pool" in message.text
    assert "The run could not be logged to Evidently's workspace: workspace full" in message.text


def test_what_the_email_says_was_done() -> None:
    board = DashboardEntry("p", "s", "http://evidently/p/s")
    kept = Kept(KEPT.report, KEPT.mlflow, board)
    off = flow.summarize(COMPARED, result(0.6), Decision("drift", True, False), kept, None, {})
    assert flow.actions(off, result(0.6), "d") == [
        "Retraining is switched off (--no-retrain or HEARTRISK_RETRAIN_ON_DRIFT=false)."
    ]
    quiet = flow.summarize(COMPARED, result(0.1), Decision("no drift", True, False), kept, None, {})
    assert flow.actions(quiet, result(0.1), "d") == [] and quiet.dashboard_url == "http://evidently/p/s"
    started = flow.summarize(COMPARED, result(0.6), Decision("drift", True, True), kept,
                             Retraining("d", "id-1", "brave-run"), {})  # fmt: skip
    assert flow.actions(started, result(0.6), "d")[0].startswith("Retraining started: flow run brave-run of d;")


def test_the_heap_that_exists_at_the_start_is_frozen_for_the_run_and_only_then() -> None:
    assert gc.get_freeze_count() == 0
    with flow.long_lived_frozen():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
    gc.freeze()  # a caller that froze the heap itself
    try:
        with flow.long_lived_frozen():
            pass
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
