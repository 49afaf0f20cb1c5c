"""Synthetic frames for the drift tests: valid records drawn per column, and served predictions beside them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from heartrisk.schema import FEATURES, OUTPUT

ROWS = 600


def synthetic(seed: int, rows: int = ROWS) -> pd.DataFrame:
    """Valid records drawn independently per column: uniform inside the range, codes at random."""
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    for feature in (*FEATURES, OUTPUT):
        if feature.codes is not None:
            columns[feature.name] = rng.choice(list(feature.codes), size=rows)
        else:
            low, high = feature.minimum, feature.maximum
            middle, spread = (low + high) / 2, (high - low) / 8
            values = np.clip(rng.normal(middle, spread, rows), low, high)
            columns[feature.name] = np.round(values) if feature.dtype == "int" else np.round(values, 1)
    return pd.DataFrame(columns)


def with_predictions(frame: pd.DataFrame, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """The frame with a probability drawn from one fixed distribution (moved by ``shift``) and its label."""
    rng = np.random.default_rng(seed)
    probability = np.clip(rng.beta(2, 3, len(frame)) + shift, 0, 1)
    return frame.assign(probability=probability, label=(probability >= 0.5).astype(int))
