"""Data drift with Evidently, and its typed results: no Prefect and no MLflow here.

Evidently's ``DataDriftPreset`` runs one statistical test per column (chosen from the column's type,
which comes from the schema, never guessed from the values) and a dataset-level count. The verdicts
are read from the snapshot's dict by metric config type, because display names change between
releases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.core.report import Snapshot
from evidently.presets import DataDriftPreset

from heartrisk.schema import BY_NAME, COLUMNS

COUNT_METRIC = "evidently:metric_v2:DriftedColumnsCount"
COLUMN_METRIC = "evidently:metric_v2:ValueDrift"


@dataclass(frozen=True)
class ColumnDrift:
    """Evidently's verdict on one column: which test, its score and threshold, drifted or not."""

    column: str
    kind: str
    method: str
    score: float
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class DriftResult:
    """Dataset-level verdict (share of drifted columns >= threshold) with the per-column verdicts."""

    share: float
    drifted_count: int
    threshold: float
    columns: tuple[ColumnDrift, ...]

    @property
    def drift_detected(self) -> bool:
        return self.share >= self.threshold

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]


def shared_columns(current: pd.DataFrame, reference: pd.DataFrame) -> list[str]:
    """Schema columns present in both frames (served data has no label, a CSV may have one)."""
    return [name for name in COLUMNS if name in current.columns and name in reference.columns]


def data_definition(columns: Sequence[str]) -> DataDefinition:
    """Column types from the schema, so Evidently picks the right test (no guessing from values)."""
    return DataDefinition(
        numerical_columns=[c for c in columns if BY_NAME[c].kind == "numeric"],
        categorical_columns=[c for c in columns if BY_NAME[c].kind == "categorical"],
    )


def run_evidently(current: pd.DataFrame, reference: pd.DataFrame, threshold: float) -> Snapshot:
    """Evidently's DataDriftPreset on the shared columns, with its per-column tests switched on."""
    columns = shared_columns(current, reference)
    definition = data_definition(columns)
    report = Report([DataDriftPreset(columns=columns, drift_share=threshold)], include_tests=True)
    return report.run(
        Dataset.from_pandas(current[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition),
    )


def parse_snapshot(snapshot: dict[str, Any], threshold: float) -> DriftResult:
    """The dataset verdict and one :class:`ColumnDrift` per column, from the snapshot's dict."""
    metrics = snapshot["metrics"]
    counts = [m for m in metrics if m["config"]["type"] == COUNT_METRIC]
    if len(counts) != 1:
        raise ValueError(f"expected one {COUNT_METRIC} metric in the Evidently snapshot, found {len(counts)}")
    verdicts = {
        test["metric_config"]["metric_id"]: test["status"]
        for test in snapshot["tests"]
        if test["metric_config"]["params"]["type"] == COLUMN_METRIC
    }
    columns = []
    for metric in metrics:
        config = metric["config"]
        if config["type"] != COLUMN_METRIC:
            continue
        if metric["id"] not in verdicts:
            raise ValueError(f"Evidently gave no drift verdict for column {config['column']!r}")
        columns.append(
            ColumnDrift(
                column=config["column"],
                kind=BY_NAME[config["column"]].kind,
                method=config["method"],
                score=float(metric["value"]),
                threshold=float(config["threshold"]),
                drifted=verdicts[metric["id"]] == "FAIL",
            )
        )
    value = counts[0]["value"]
    return DriftResult(
        share=float(value["share"]), drifted_count=int(value["count"]), threshold=threshold, columns=tuple(columns)
    )


def compute_drift(current: pd.DataFrame, reference: pd.DataFrame, threshold: float) -> tuple[DriftResult, Snapshot]:
    """Run Evidently and read its verdicts; the snapshot is kept for the HTML report."""
    snapshot = run_evidently(current, reference, threshold)
    return parse_snapshot(snapshot.dict(), threshold), snapshot
