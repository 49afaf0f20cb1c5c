"""Explanations from the app under gunicorn with a registered champion answered by ONNX Runtime."""

from __future__ import annotations

import pytest
import requests

from heartrisk.data import load_csv
from heartrisk.schema import FEATURE_NAMES, FEATURES
from tests.support.app import Served
from tests.support.paths import HEART
from tests.support.predlog import count as count_rows

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:X does not have valid feature names")]


def test_an_explanation_adds_up_names_the_serving_version_and_is_logged(served: Served) -> None:
    frame = load_csv(HEART)
    records = [{f.name: frame.iloc[i][f.name].item() for f in FEATURES} for i in (0, 50, 200)]
    before = count_rows(served.app.log)
    for record in records:
        predicted = requests.post(f"{served.app.url}/api/v1/predict", json=record, timeout=60).json()
        explained = requests.post(f"{served.app.url}/api/v1/explain", json=record, timeout=60)
        assert explained.status_code == 200, explained.text
        body = explained.json()
        assert body["version"] == predicted["model_version"] == served.version
        assert body["probability"] == predicted["probability"]
        assert list(body["contributions"]) == list(FEATURE_NAMES)
        assert sum(body["contributions"].values()) == pytest.approx(body["probability"] - body["baseline"], abs=1e-6)
    assert count_rows(served.app.log) - before == 2 * len(records)
