"""The Evidently report of one monitoring run: which metrics, on which column types, and two of HeartRisk's own.

Kept apart from :mod:`heartrisk.drift` (the results and how they are read) because importing Evidently
costs about 6 s of CPU: only the step that compares data imports this module, so the commands that
need only the result types (the e-mail, the deployments, a run with too few rows) never pay it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.core.metric_types import SingleValueCalculation, SingleValueMetric
from evidently.core.report import Snapshot
from evidently.metrics import CategoryCount, MeanValue, RowCount, ValueDrift
from evidently.presets import DataDriftPreset

from heartrisk.drift import (
    LABEL,
    PREDICTION,
    PROBABILITY,
    DriftResult,
    has_predictions,
    parse_prediction,
    parse_snapshot,
    shared_columns,
)
from heartrisk.schema import BY_NAME

WINDOW_METADATA = "served_rows"  # the current dataset's metadata: rows of the window per model version


class WindowRows(SingleValueMetric):
    """Rows of the monitoring window, as the prediction log counted them before any sampling.

    Evidently only sees the rows it compares (a sample of a large window), so the database's count
    travels in the current dataset's metadata and this metric puts it in the snapshot, where the
    dashboard charts it. No test: a count is not a verdict.
    """

    def _default_tests(self, context: Any) -> list:
        return []

    def _default_tests_with_reference(self, context: Any) -> list:
        return []


class WindowRowsCalculation(SingleValueCalculation[WindowRows]):
    def calculate(self, context: Any, current_data: Dataset, reference_data: Dataset | None) -> tuple:
        counts = current_data.metadata.get(WINDOW_METADATA) or {}
        return self.result(sum(int(n) for n in counts.values()) or current_data.stats().row_count), None

    def display_name(self) -> str:
        return "Rows in the window (before sampling)"


class ModelVersionRows(WindowRows):
    """Rows of the window served by one model version, so a drift that starts with a promotion shows."""

    model_version: str


class ModelVersionRowsCalculation(SingleValueCalculation[ModelVersionRows]):
    def calculate(self, context: Any, current_data: Dataset, reference_data: Dataset | None) -> tuple:
        counts = current_data.metadata.get(WINDOW_METADATA) or {}
        return self.result(int(counts.get(self.metric.model_version, 0))), None

    def display_name(self) -> str:
        return f"Rows served by model version {self.metric.model_version}"


def data_definition(columns: Sequence[str], predictions: bool = False) -> DataDefinition:
    """Column types from the schema, so Evidently picks the right test (no guessing from values); the
    probability is a number, the label a category."""
    return DataDefinition(
        numerical_columns=[c for c in columns if BY_NAME[c].kind == "numeric"] + ([PROBABILITY] if predictions else []),
        categorical_columns=[c for c in columns if BY_NAME[c].kind == "categorical"] + ([LABEL] if predictions else []),
    )


def report(columns: Sequence[str], threshold: float, predictions: bool, versions: Sequence[str] = ()) -> Report:
    """The report of one run: input drift, prediction drift on its own, and what the dashboard charts."""
    metrics: list[Any] = [DataDriftPreset(columns=list(columns), drift_share=threshold), RowCount(), WindowRows()]
    metrics += [ModelVersionRows(model_version=version) for version in versions]
    if predictions:
        metrics += [ValueDrift(column=PROBABILITY), ValueDrift(column=LABEL), MeanValue(column=PROBABILITY)]
        metrics += [CategoryCount(column=LABEL, category=1)]
    return Report(metrics, include_tests=True)


def compute_drift(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    threshold: float,
    versions: Mapping[str, int] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> tuple[DriftResult, Snapshot]:
    """Evidently on the shared columns (and the predictions when both sides have them), and its verdicts;
    the snapshot is kept for the HTML report and the dashboard.

    ``versions`` are the window's rows per model version, counted by the prediction log; ``metadata``
    goes on the snapshot (source, sampling) for the people who open it in the UI.
    """
    columns = shared_columns(current, reference)
    predictions = has_predictions(current, reference)
    kept = [*columns, *(PREDICTION if predictions else ())]
    definition = data_definition(columns, predictions)
    counts = {str(version): str(rows) for version, rows in (versions or {}).items()}
    snapshot = report(columns, threshold, predictions, list(counts)).run(
        Dataset.from_pandas(current[kept], data_definition=definition, metadata={WINDOW_METADATA: counts}),
        Dataset.from_pandas(reference[kept], data_definition=definition),
        metadata=dict(metadata or {}),
        tags=[f"model-v{version}" for version in counts],
    )
    data = snapshot.dict()
    result = replace(parse_snapshot(data, threshold), prediction=parse_prediction(data, current, reference))
    return result, snapshot
