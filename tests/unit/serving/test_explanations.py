"""Explanations on demand: nothing loaded for requests that do not ask, the study summarised once per worker."""

from __future__ import annotations

import subprocess
import sys

from flask.testing import FlaskClient

from heartrisk.serving.explanations import background
from heartrisk.settings import Settings
from tests.support.paths import ROOT

# A worker that answers a prediction: what it has imported, then what the first explanation adds.
PROBE = """
import dataclasses
import sys
import tempfile

from heartrisk.config import get_settings
from heartrisk.serving import create_app
from heartrisk.serving.model_holder import ModelHolder
from heartrisk.scoring import LoadedModel
from tests.support.models import fit_pipeline
settings = get_settings()
settings = dataclasses.replace(settings, predictions_db=tempfile.mkdtemp() + "/p.sqlite")
holder = ModelHolder(settings)
holder.install(LoadedModel.of("M", "3", fit_pipeline()))
client = create_app(settings, holder).test_client()
record = dict(age=63, sex=1, cp=3, trtbps=145, chol=233, fbs=1, restecg=0, thalachh=150, exng=0, oldpeak=2.3,
              slp=0, caa=0, thall=1)
assert client.post("/api/v1/predict", json=record).status_code == 200
print("before", "heartrisk.explain" in sys.modules, "sklearn.cluster" in sys.modules)
assert client.post("/api/v1/explain", json=record).status_code == 200
print("after", "heartrisk.explain" in sys.modules, "sklearn.cluster" in sys.modules)
"""


def test_a_prediction_loads_nothing_of_the_explanations() -> None:
    run = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split("\n")[-3:-1] == ["before False False", "after True True"], run.stdout


def test_the_study_is_summarised_once_per_worker(client: FlaskClient, settings: Settings, record) -> None:
    first = background(settings.data_path)
    assert client.post("/api/v1/explain", json=record).status_code == 200
    assert background(settings.data_path) is first
