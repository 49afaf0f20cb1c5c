"""The application factory: blueprints, error pages and JSON errors, never a traceback."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from flask import request

from heartrisk.scoring import LoadedModel
from heartrisk.serving import create_app
from heartrisk.serving.model_holder import ModelHolder
from heartrisk.settings import Settings

pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


def test_errors_are_friendly_and_never_show_a_traceback(settings: Settings, record) -> None:
    class Broken:
        classes_ = np.array([0, 1])

        def predict_proba(self, matrix):
            raise RuntimeError("secret internal detail")

    holder = ModelHolder(settings)
    holder.install(LoadedModel("Broken", "1", Broken(), 0.0, 1))
    client = create_app(settings, holder).test_client()
    api = client.post("/api/v1/predict", json=record)
    assert api.status_code == 500
    assert "secret" not in api.get_data(as_text=True)
    assert api.get_json()["error"].startswith("Something went wrong")
    page = client.post("/", data={k: str(v) for k, v in record.items()})
    assert page.status_code == 500
    assert page.mimetype == "text/html"
    assert "secret" not in page.get_data(as_text=True)
    assert "Traceback" not in page.get_data(as_text=True)
    assert client.get("/nowhere").mimetype == "text/html"
    assert client.get("/api/v1/nowhere").get_json()["error"]
    assert client.delete("/").status_code == 405


@pytest.mark.parametrize(("proxies", "seen"), [(0, "10.0.0.9"), (1, "203.0.113.7")])
def test_the_client_address_comes_from_the_proxy_only_when_one_is_trusted(
    settings: Settings, holder: ModelHolder, proxies: int, seen: str
) -> None:
    """nginx appends the address it saw to X-Forwarded-For; without a trusted proxy a client could forge it."""
    app = create_app(
        dataclasses.replace(settings, app=dataclasses.replace(settings.app, trusted_proxies=proxies)), holder
    )
    app.add_url_rule("/who", "who", lambda: f"{request.remote_addr} {request.scheme}")
    forwarded = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7", "X-Forwarded-Proto": "https"}
    answer = app.test_client().get("/who", headers=forwarded, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert answer.get_data(as_text=True) == f"{seen} {'https' if proxies else 'http'}"
