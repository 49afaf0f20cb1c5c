"""A registered model version in memory and how it scores records: what the app serves and the monitor
scores the reference data with, so both give the same probability for the same record."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from heartrisk import export
from heartrisk.schema import FEATURE_NAMES

# The pipeline was fitted on a DataFrame; it is given a float array in the same column order (checked
# once in LoadedModel.of), because scikit-learn's per-call DataFrame checks cost more than the model.
warnings.filterwarnings("ignore", message="X does not have valid feature names", category=UserWarning)


@dataclass(frozen=True)
class LoadedModel:
    """One registered model version held in memory, and the runtime that answers for it."""

    name: str
    version: str
    pipeline: Any  # scikit-learn: what an export is checked against, and what answers without one
    loaded_at: float
    positive: int  # column of predict_proba that holds label 1
    onnx: export.OnnxModel | None = None  # answers instead of the pipeline when set
    runtime_note: str = ""  # why this runtime answers

    @classmethod
    def of(cls, name: str, version: str, pipeline: Any, note: str = "") -> LoadedModel:
        """Wrap a fitted pipeline after checking it expects the schema's columns, in the schema's order."""
        columns = getattr(pipeline, "feature_names_in_", None)
        if columns is not None and list(columns) != list(FEATURE_NAMES):
            raise ValueError(f"model expects columns {list(columns)}, the schema has {list(FEATURE_NAMES)}")
        positive = int(np.flatnonzero(pipeline.classes_ == 1)[0])
        return cls(name, version, pipeline, time.time(), positive, None, note)

    @property
    def runtime(self) -> str:
        return export.ONNX_RUNTIME if self.onnx is not None else export.SKLEARN

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probability of label 1 and the label (1 when that probability is at least 0.5), per row."""
        probability = (self.onnx or self.pipeline).predict_proba(features)[:, self.positive]
        return probability, (probability >= 0.5).astype(int)
