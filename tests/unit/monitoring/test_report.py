"""Where the report goes: the HTML file (and a stable latest.html), the MLflow run's metrics, the links."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from heartrisk.monitoring.current import Current
from heartrisk.monitoring.report import Compared, metrics, save_report
from heartrisk.summaries import DashboardEntry, Failed, TrackedRun, link
from tests.unit.monitoring.results import predictions_moved, result


class Snapshot:
    """What save_report uses of Evidently's snapshot: its HTML, written to a path given as text."""

    def __init__(self, html: str) -> None:
        self.html = html

    def save_html(self, path: str) -> None:
        assert isinstance(path, str)
        Path(path).write_text(self.html)


def test_each_report_is_kept_and_latest_html_follows_the_newest(tmp_path: Path) -> None:
    first = save_report.fn(Snapshot("one"), tmp_path / "reports", "20261204T000000Z")
    second = save_report.fn(Snapshot("two"), tmp_path / "reports", "20261205T000000Z")
    assert first.read_text() == "one" and second.read_text() == "two"
    assert (tmp_path / "reports" / "latest.html").read_text() == "two"
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [first.name, second.name, "latest.html"]


def test_the_mlflow_run_charts_the_verdict_the_rows_and_the_predictions() -> None:
    sampled = Current(pd.DataFrame({"age": range(100)}), "log", 1_000, {"3": 600, "4": 400})
    drifted = result(0.6)
    values = metrics(drifted, Compared(sampled, "ref.csv", 303, 0.5))
    assert values["drift_share"] == 0.6 and values["current_rows"] == 1_000 and values["sampled_rows"] == 100
    assert (values["rows_model_v3"], values["rows_model_v4"], values["drifted_age"]) == (600, 400, 1)
    assert "prediction_drift_score" not in values
    moved = metrics(replace(drifted, prediction=predictions_moved(True)),
                    Compared(Current(pd.DataFrame({"age": [1]}), "csv", 1), "ref.csv", 303, 0.5))  # fmt: skip
    assert moved["prediction_drifted"] == 1 and moved["mean_probability"] == 0.6 and "sampled_rows" not in moved


def test_a_destination_that_failed_gives_no_link() -> None:
    assert link(Failed("MLflow down")) == "" and link(None) == ""
    assert link(DashboardEntry("p", "s", "http://ui/p/s")) == "http://ui/p/s"
    assert link(TrackedRun("r", "http://mlflow/r")) == "http://mlflow/r"
