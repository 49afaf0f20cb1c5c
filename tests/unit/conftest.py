"""Unit-test fixtures: the serving app through Flask's test client, with a real (small) fitted pipeline
answered, as in production, by its ONNX export."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from flask import Flask
from flask.testing import FlaskClient

from heartrisk import export
from heartrisk.config import get_settings
from heartrisk.data import deduplicate, features_and_target, load_csv
from heartrisk.schema import FEATURES
from heartrisk.scoring import LoadedModel
from heartrisk.serving import create_app
from heartrisk.serving.model_holder import ModelHolder
from heartrisk.serving.runtime import EXTENSION
from heartrisk.settings import Settings
from tests.support.models import fit_pipeline
from tests.support.paths import HEART
from tests.support.prefect_stack import prefect_server_alone
from tests.support.servers import free_port

# The app gives the pipeline a float array in schema order (see model_holder); pytest resets the app's filter.
pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prefect server of this test process (blocks, flow runs, deployments), started on first use; the
    process's Prefect client points at it. The retention flow and its overdue check run against it."""
    with prefect_server_alone(tmp_path_factory.mktemp("prefect-alone"), tmp_path_factory) as api_url:
        yield api_url


@pytest.fixture(scope="session")
def frame() -> pd.DataFrame:
    return deduplicate(load_csv(HEART))


@pytest.fixture(scope="session")
def pipeline() -> Any:
    return fit_pipeline()


@pytest.fixture(scope="session")
def onnx_model(pipeline: Any, frame: pd.DataFrame) -> export.OnnxModel:
    exported = export.export(pipeline, features_and_target(frame)[0])
    assert exported.graph is not None, exported.problem
    return export.OnnxModel(exported.graph)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    base = get_settings()
    app = dataclasses.replace(base.app, max_batch_rows=5, metrics_dir="")
    return dataclasses.replace(base, predictions_db=str(tmp_path / "predictions.sqlite"), app=app)


@pytest.fixture
def holder(settings: Settings, pipeline: Any, onnx_model: export.OnnxModel) -> ModelHolder:
    holder = ModelHolder(settings)
    model = LoadedModel.of("UnitModel", "7", pipeline)
    holder.install(dataclasses.replace(model, onnx=onnx_model, runtime_note="ONNX export matches scikit-learn"))
    return holder


@pytest.fixture
def unlogged_client(settings: Settings, holder: ModelHolder) -> FlaskClient:
    """The app with a model, and a prediction log it cannot reach (PostgreSQL on a closed port)."""
    url = f"postgresql://app:s3cret@127.0.0.1:{free_port()}/log"  # pragma: allowlist secret
    return create_app(dataclasses.replace(settings, predictions_db=url), holder).test_client()


@pytest.fixture
def app(settings: Settings, holder: ModelHolder) -> Flask:
    return create_app(settings, holder)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """The app as anyone reaches it: on its public port."""
    return app.test_client()


class InternalClient(FlaskClient):
    """Flask's test client on the app's internal port (``serving.health.internal``): the test client takes
    ``SERVER_PORT`` from the base URL, as gunicorn takes it from the socket that accepted the connection."""

    def open(self, *args: Any, **kwargs: Any):
        port = self.application.extensions[EXTENSION].settings.app.internal_port
        kwargs.setdefault("base_url", f"http://localhost:{port}")
        return super().open(*args, **kwargs)


@pytest.fixture
def internal_client(app: Flask) -> FlaskClient:
    """The same app on its internal port: /metrics and the detailed /readyz."""
    return InternalClient(app, app.response_class, use_cookies=True)


@pytest.fixture
def record(frame: pd.DataFrame) -> dict[str, Any]:
    row = frame.iloc[10]
    return {f.name: (float(row[f.name]) if f.dtype == "float" else int(row[f.name])) for f in FEATURES}
