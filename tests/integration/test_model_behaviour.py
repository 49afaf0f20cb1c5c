"""Behaviour of the trained champion, in the spirit of Made-With-ML's model tests: with everything else
equal, what the source study links to disease raises the probability the model gives.

In the shipped data the disease rate is 73 % for cp = 0 against 30 % for cp = 3, 77 % for exng = 1
against 30 % for exng = 0, and 85 % for caa = 3 against 26 % for caa = 0 (data/README.md).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from heartrisk.data import deduplicate, load_csv
from heartrisk.schema import FEATURE_NAMES, FEATURES
from tests.support.models import CHAMPION_MODEL as MODEL_NAME
from tests.support.models import champion_pipeline
from tests.support.paths import HEART

pytestmark = pytest.mark.integration


def median_record() -> dict[str, float]:
    """The data set's median patient, each value rounded to what the schema allows."""
    medians = deduplicate(load_csv(HEART))[list(FEATURE_NAMES)].median()
    return {f.name: float(np.round(medians[f.name])) if f.dtype == "int" else float(medians[f.name]) for f in FEATURES}


@pytest.mark.parametrize(
    ("feature", "lower", "higher"),
    [("cp", 3, 0), ("exng", 0, 1), ("caa", 0, 3)],
    ids=["asymptomatic chest pain", "exercise-induced angina", "more vessels coloured"],
)
def test_what_the_study_links_to_disease_raises_the_probability(
    champion: dict, mlflow_server: str, feature: str, lower: int, higher: int
) -> None:
    pipeline = champion_pipeline(mlflow_server, MODEL_NAME)
    base = median_record()
    rows = pd.DataFrame([{**base, feature: lower}, {**base, feature: higher}], columns=list(FEATURE_NAMES))
    low, high = pipeline.predict_proba(rows)[:, 1]
    assert high > low, f"{feature}={higher} gives {high:.3f}, not above {feature}={lower} ({low:.3f})"
