"""Drift results made by hand, for the monitoring tests."""

from __future__ import annotations

from heartrisk.drift import ColumnDrift, DriftResult, PredictionDrift


def result(share: float, threshold: float = 0.5) -> DriftResult:
    column = ColumnDrift("age", "numeric", "K-S p_value", 0.001 if share else 0.6, 0.05, bool(share))
    return DriftResult(share, int(share > 0), threshold, (column,))


def predictions_moved(moved: bool) -> PredictionDrift:
    probability = ColumnDrift("probability", "prediction", "K-S p_value", 1e-9 if moved else 0.4, 0.05, moved)
    label = ColumnDrift("label", "prediction", "Z-test p_value", 0.5, 0.05, False)
    return PredictionDrift(probability, label, (0.6, 0.4), (0.6, 0.3))
