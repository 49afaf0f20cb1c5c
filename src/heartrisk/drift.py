"""Data drift and prediction drift with Evidently, and their typed results: no Prefect and no MLflow here.

One Evidently report per monitoring run. Its ``DataDriftPreset`` runs one statistical test per input
column (chosen from the column's type, which comes from the schema, never guessed from the values)
and a dataset-level count; beside it, what the model said is compared on its own: the probability of
coronary artery disease (``schema.TARGET``) and the label, each with its own test, never counted in
the share of drifted input columns. A few plain statistics (rows, mean probability, positive rate)
go in the same report, so a dashboard of every run can chart them (:mod:`heartrisk.dashboard`).
The verdicts are read from the snapshot's dict by metric config type, because display names change
between releases. This module holds the results and how they are read, and does not import Evidently
(about 6 s of CPU); :mod:`heartrisk.evidently_report` builds and runs the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from heartrisk.schema import BY_NAME, COLUMNS

COUNT_METRIC = "evidently:metric_v2:DriftedColumnsCount"
COLUMN_METRIC = "evidently:metric_v2:ValueDrift"
PROBABILITY, LABEL = "probability", "label"  # the prediction log's names for what the model said
PREDICTION = (PROBABILITY, LABEL)


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
