"""Data drift and prediction drift with Evidently, and their typed results: no Prefect and no MLflow here.

One Evidently report per monitoring run. Its ``DataDriftPreset`` runs one statistical test per input
column (chosen from the column's type, which comes from the schema, never guessed from the values)
and a dataset-level count; beside it, what the model said is compared on its own: the probability of
coronary artery disease (``schema.TARGET``) and the label, each with its own test, never counted in
the share of drifted input columns. A few plain statistics (rows, mean probability, positive rate)
go in the same report, so a dashboard of every run can chart them (:mod:`heartrisk.dashboard`).
The verdicts are read from the snapshot's dict by metric config type, because display names change
between releases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.core.metric_types import SingleValueCalculation, SingleValueMetric
from evidently.core.report import Snapshot
from evidently.metrics import CategoryCount, MeanValue, RowCount, ValueDrift
from evidently.presets import DataDriftPreset

from heartrisk.schema import BY_NAME, COLUMNS

COUNT_METRIC = "evidently:metric_v2:DriftedColumnsCount"
COLUMN_METRIC = "evidently:metric_v2:ValueDrift"
PROBABILITY, LABEL = "probability", "label"  # the prediction log's names for what the model said
PREDICTION = (PROBABILITY, LABEL)
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
class PredictionDrift:
    """What the model said, current against reference: the probability decides, the label is shown beside it."""

    probability: ColumnDrift
    label: ColumnDrift
    mean_probability: tuple[float, float]  # (current, reference)
    positive_rate: tuple[float, float]  # share of label 1, (current, reference)

    @property
    def detected(self) -> bool:
        return self.probability.drifted

    def to_json(self) -> dict[str, Any]:
        """The ``prediction_drift`` of ``heartrisk monitor``: detected, score, method, and the details."""
        label = self.label
        return {
            "detected": self.detected,
            "score": self.probability.score,
            "method": self.probability.method,
            "threshold": self.probability.threshold,
            "label": {"detected": label.drifted, "score": label.score, "method": label.method},
            "mean_probability": dict(zip(("current", "reference"), self.mean_probability, strict=True)),
            "positive_rate": dict(zip(("current", "reference"), self.positive_rate, strict=True)),
        }


@dataclass(frozen=True)
class DriftResult:
    """Dataset-level verdict (share of drifted input columns >= threshold), the per-column verdicts, and
    the prediction drift (None when one side has no predictions)."""

    share: float
    drifted_count: int
    threshold: float
    columns: tuple[ColumnDrift, ...]
    prediction: PredictionDrift | None = None

    @property
    def drift_detected(self) -> bool:
        return self.share >= self.threshold

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]


def shared_columns(current: pd.DataFrame, reference: pd.DataFrame) -> list[str]:
    """Schema columns present in both frames (served data has no label, a CSV may have one)."""
    return [name for name in COLUMNS if name in current.columns and name in reference.columns]


def has_predictions(current: pd.DataFrame, reference: pd.DataFrame) -> bool:
    return all(name in frame.columns for name in PREDICTION for frame in (current, reference))


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


def run_evidently(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    threshold: float,
    versions: Mapping[str, int] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Snapshot:
    """Evidently on the shared columns (and the predictions when both sides have them).

    ``versions`` are the window's rows per model version, counted by the prediction log; ``metadata``
    goes on the snapshot (source, sampling) for the people who open it in the UI.
    """
    columns = shared_columns(current, reference)
    predictions = has_predictions(current, reference)
    kept = [*columns, *(PREDICTION if predictions else ())]
    definition = data_definition(columns, predictions)
    counts = {str(version): str(rows) for version, rows in (versions or {}).items()}
    return report(columns, threshold, predictions, list(counts)).run(
        Dataset.from_pandas(current[kept], data_definition=definition, metadata={WINDOW_METADATA: counts}),
        Dataset.from_pandas(reference[kept], data_definition=definition),
        metadata=dict(metadata or {}),
        tags=[f"model-v{version}" for version in counts],
    )


def _verdicts(snapshot: dict[str, Any]) -> dict[str, ColumnDrift]:
    """One :class:`ColumnDrift` per compared column (inputs and predictions), by column name."""
    verdicts = {
        test["metric_config"]["metric_id"]: test["status"]
        for test in snapshot["tests"]
        if test["metric_config"]["params"]["type"] == COLUMN_METRIC
    }
    columns = {}
    for metric in snapshot["metrics"]:
        config = metric["config"]
        if config["type"] != COLUMN_METRIC:
            continue
        if metric["id"] not in verdicts:
            raise ValueError(f"Evidently gave no drift verdict for column {config['column']!r}")
        name = config["column"]
        columns[name] = ColumnDrift(
            column=name,
            kind="prediction" if name in PREDICTION else BY_NAME[name].kind,
            method=config["method"],
            score=float(metric["value"]),
            threshold=float(config["threshold"]),
            drifted=verdicts[metric["id"]] == "FAIL",
        )
    return columns


def parse_snapshot(snapshot: dict[str, Any], threshold: float) -> DriftResult:
    """The dataset verdict and one :class:`ColumnDrift` per input column (the predictions are not counted)."""
    counts = [m for m in snapshot["metrics"] if m["config"]["type"] == COUNT_METRIC]
    if len(counts) != 1:
        raise ValueError(f"expected one {COUNT_METRIC} metric in the Evidently snapshot, found {len(counts)}")
    value = counts[0]["value"]
    return DriftResult(
        share=float(value["share"]),
        drifted_count=int(value["count"]),
        threshold=threshold,
        columns=tuple(c for name, c in _verdicts(snapshot).items() if name not in PREDICTION),
    )


def parse_prediction(
    snapshot: dict[str, Any], current: pd.DataFrame, reference: pd.DataFrame
) -> PredictionDrift | None:
    """Evidently's verdicts on the probability and the label, with their means on each side (the snapshot
    keeps only the current side's statistics, so both are taken from the frames)."""
    columns = _verdicts(snapshot)
    if PROBABILITY not in columns:
        return None
    return PredictionDrift(
        probability=columns[PROBABILITY],
        label=columns[LABEL],
        mean_probability=(float(current[PROBABILITY].mean()), float(reference[PROBABILITY].mean())),
        positive_rate=(float((current[LABEL] == 1).mean()), float((reference[LABEL] == 1).mean())),
    )


def compute_drift(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    threshold: float,
    versions: Mapping[str, int] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> tuple[DriftResult, Snapshot]:
    """Run Evidently and read its verdicts; the snapshot is kept for the HTML report and the dashboard."""
    snapshot = run_evidently(current, reference, threshold, versions, metadata)
    data = snapshot.dict()
    result = replace(parse_snapshot(data, threshold), prediction=parse_prediction(data, current, reference))
    return result, snapshot
