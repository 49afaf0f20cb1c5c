"""The purge's result: one count per kind in the JSON line (null and a reason for a kind that failed), one
sentence per kind in the log, and retention switched off said in one line."""

from __future__ import annotations

from heartrisk.purge import KINDS, PurgeResult, Swept
from heartrisk.summaries import Failed

LOG = Swept(3, "/state/predictions.sqlite", remaining=2)


def test_the_json_line_counts_every_kind_and_keeps_the_logs_own_keys() -> None:
    outcomes = {
        "predictions": LOG,
        "snapshots": Swept(1, "the workspace"),
        "reports": Swept(2, "/state/reports"),
        "mlflow_runs": Swept(1, "the experiment", left=4, note="Their records stay."),
        "mails": Swept(5, "/state/mail"),
    }
    result = PurgeResult.of(30, outcomes)
    assert result.ok and result.failure() == ""
    assert result.to_json() == {
        "deleted": 3, "remaining": 2, "older_than_days": 30, "snapshots": 1, "reports": 2, "mlflow_runs": 1,
        "mails": 5, "mlflow_runs_awaiting_gc": 4, "failed": {},
    }  # fmt: skip
    lines = result.lines()
    assert lines[0] == "Deleted 3 predictions older than 30 days from /state/predictions.sqlite; 2 remain."
    assert lines[3] == (
        "Deleted 1 MLflow monitoring runs (with their artifacts) older than 30 days from the experiment. "
        "Their records stay."
    )
    assert len(lines) == len(KINDS)


def test_a_kind_that_failed_has_no_count_and_its_reason_is_said_last() -> None:
    result = PurgeResult.of(
        7, {"predictions": Failed("prediction log db unreachable: refused"), "snapshots": Swept(0, "w"),
            "reports": Swept(1, "r"), "mlflow_runs": Failed("MLflow unreachable at http://m"), "mails": Swept(0, "m")},
    )  # fmt: skip
    shown = result.to_json()
    assert (shown["deleted"], shown["remaining"], shown["mlflow_runs"], shown["mlflow_runs_awaiting_gc"]) == (None,) * 4
    assert shown["reports"] == 1
    assert shown["failed"] == {
        "predictions": "prediction log db unreachable: refused",
        "mlflow_runs": "MLflow unreachable at http://m",
    }
    assert not result.ok
    assert result.failure() == (
        "predictions: prediction log db unreachable: refused; "
        "MLflow monitoring runs (with their artifacts): MLflow unreachable at http://m"
    )
    assert result.lines()[-1] == "FAILED: MLflow monitoring runs (with their artifacts): MLflow unreachable at http://m"


def test_retention_off_looks_only_at_the_log_and_says_so_in_one_line() -> None:
    result = PurgeResult.of(0, {"predictions": Swept(0, "/state/predictions.sqlite", remaining=9)})
    assert result.lines() == ["Retention is off (0 days): nothing deleted from /state/predictions.sqlite, 9 rows kept."]
    shown = result.to_json()
    assert [shown[kind] for kind in KINDS[1:]] == [0, 0, 0, 0] and shown["remaining"] == 9
