"""The one scoring path: request ids, and every served record logged before the answer leaves."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np
import pytest
from flask import Flask

from heartrisk.predlog import open_log
from heartrisk.schema import as_matrix
from heartrisk.serving.runtime import NoModel, client_request_id, request_id, score
from heartrisk.settings import Settings
from tests.support.predlog import count as count_rows
from tests.support.predlog import logged as logged_rows

pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


@pytest.mark.parametrize(
    ("given", "kept"),
    [("req-42", True), ("a" * 64, True), ("a" * 65, False), ("bad id", False), ("<script>", False), ("", False)],
)
def test_the_key_is_the_servers_and_a_sane_client_id_is_kept_beside_it(app: Flask, given: str, kept: bool) -> None:
    with app.test_request_context("/", headers={"X-Request-ID": given}):
        rid = request_id()
        assert re.fullmatch(r"[0-9a-f]{32}", rid) and rid != given
        assert request_id() == rid  # one id for the whole request
        assert client_request_id() == (given if kept else None)
    with app.test_request_context("/", headers={"X-Request-ID": given}):
        assert request_id() != rid  # a new key for every request, whatever the client sends


def test_score_logs_every_record_with_the_model_version_and_both_ids(
    app: Flask, settings: Settings, record: dict[str, Any], pipeline: Any
) -> None:
    with app.test_request_context("/", headers={"X-Request-ID": "r1"}):
        scored = score(as_matrix([record, record]))
        key = request_id()
    assert scored.model.version == "7"
    assert scored.labels == [int(p >= 0.5) for p in scored.probabilities]
    logged = logged_rows(open_log(settings.predictions_db))
    assert logged[["request_id", "client_request_id"]].values.tolist() == [[key, "r1"], [key, "r1"]]
    assert np.allclose(logged["probability"], scored.probabilities)


def test_no_model_is_an_error_the_caller_answers_and_nothing_is_logged(settings: Settings, record: dict) -> None:
    from heartrisk.serving import create_app
    from heartrisk.serving.model_holder import ModelHolder

    app = create_app(settings, ModelHolder(settings))
    with app.test_request_context("/"), pytest.raises(NoModel, match="not been looked up"):
        score(as_matrix([record]))
    assert count_rows(open_log(settings.predictions_db)) == 0


@pytest.mark.parametrize(("synchronous", "pragma"), [("FULL", 2), ("NORMAL", 1)])
def test_the_app_writes_its_sqlite_log_with_the_configured_disk_syncs(
    settings: Settings, holder: Any, record: dict, synchronous: str, pragma: int
) -> None:
    from heartrisk.serving import create_app
    from heartrisk.serving.runtime import EXTENSION

    app = create_app(dataclasses.replace(settings, predictions_sqlite_synchronous=synchronous), holder)
    with app.test_request_context("/"):
        score(as_matrix([record]))
        written_by = app.extensions[EXTENSION].log._writer()  # this thread's connection: the one that wrote
        assert written_by.execute("PRAGMA synchronous").fetchone() == (pragma,)
