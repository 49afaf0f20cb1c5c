"""The drift results and how they are read from a snapshot, without Evidently loaded."""

from __future__ import annotations

import subprocess
import sys

import pytest

from heartrisk.drift import COLUMN_METRIC, COUNT_METRIC, ColumnDrift, DriftResult, parse_snapshot


def _snapshot(share: float, count: int, verdicts: dict[str, str]) -> dict:
    metrics = [{"id": "count", "config": {"type": COUNT_METRIC}, "value": {"share": share, "count": count}}]
    tests = []
    for number, (column, status) in enumerate(verdicts.items()):
        config = {"type": COLUMN_METRIC, "column": column, "method": "K-S p_value", "threshold": 0.05}
        metrics.append({"id": f"m{number}", "config": config, "value": 0.01 if status == "FAIL" else 0.5})
        tests.append(
            {"metric_config": {"metric_id": f"m{number}", "params": {"type": COLUMN_METRIC}}, "status": status}
        )
    return {"metrics": metrics, "tests": tests}


def test_the_verdicts_are_read_by_metric_type_and_the_predictions_are_not_counted() -> None:
    result = parse_snapshot(_snapshot(0.5, 1, {"age": "FAIL", "chol": "SUCCESS", "probability": "FAIL"}), 0.5)
    assert result.drift_detected and result.drifted_columns == ["age"]
    assert [c.column for c in result.columns] == ["age", "chol"]
    assert result.columns[0] == ColumnDrift("age", "numeric", "K-S p_value", 0.01, 0.05, True)


def test_a_share_under_the_threshold_is_no_drift() -> None:
    assert not DriftResult(share=0.2, drifted_count=1, threshold=0.5, columns=()).drift_detected


def test_a_snapshot_without_the_count_metric_is_refused() -> None:
    with pytest.raises(ValueError, match="expected one"):
        parse_snapshot({"metrics": [], "tests": []}, 0.5)


def test_the_commands_that_need_no_comparison_do_not_load_evidently_skops_or_scikit_learn() -> None:
    """Evidently costs about 6 s of CPU to import and skops 2.5 s: the e-mail, the deployments and the
    CLI's start pay neither (the step that compares data and the model's save import them)."""
    code = (
        "import sys\nimport heartrisk.cli, heartrisk.drift, heartrisk.notify, heartrisk.registry\n"
        "import heartrisk.monitoring.flow\n"
        "print(sorted(m for m in ('evidently', 'skops', 'sklearn.model_selection') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr
