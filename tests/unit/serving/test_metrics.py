"""Prometheus metrics: requests, predictions by label, the model version."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient

pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


def test_metrics_count_requests_and_predictions_by_label(
    client: FlaskClient, internal_client: FlaskClient, record
) -> None:
    def sample(text: str, line: str) -> float:
        found = re.search(rf"^{re.escape(line)} (\S+)$", text, re.M)
        return float(found.group(1)) if found else 0.0

    label = client.post("/api/v1/predict", json=record).get_json()["label"]
    before = internal_client.get("/metrics").get_data(as_text=True)
    client.post("/api/v1/predict", json=[record] * 3)
    after = internal_client.get("/metrics").get_data(as_text=True)
    predicted = f'heartrisk_predictions_total{{label="{label}"}}'
    assert sample(after, predicted) - sample(before, predicted) == 3
    requests = 'heartrisk_http_requests_total{endpoint="/api/v1/predict",method="POST",status="200"}'
    assert sample(after, requests) - sample(before, requests) == 1
    assert sample(after, 'heartrisk_model_info{model="UnitModel",runtime="onnxruntime",version="7"}') == 1
    assert "heartrisk_http_request_duration_seconds_bucket" in after
