"""The Open Inference Protocol as a client we did not write speaks it: Triton's Python HTTP client
(``tritonclient[http]``) against the app under gunicorn, with its champion from a real MLflow server."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest
import requests
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from heartrisk.data import load_csv
from heartrisk.names import INFERENCE_MODEL
from heartrisk.schema import FEATURE_NAMES
from tests.support.app import Served
from tests.support.paths import HEART
from tests.support.predlog import logged

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:X does not have valid feature names")]


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    frame = load_csv(HEART).sample(25, random_state=7)
    return [{n: row[n].item() for n in FEATURE_NAMES} for _, row in frame.iterrows()]


@pytest.fixture
def client(served: Served) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(served.app.url.removeprefix("http://"), network_timeout=60)


def as_json(tensor: triton.InferInput, data: np.ndarray) -> triton.InferInput:
    """Tensor data as JSON, the protocol's own form (the client's default is Triton's binary extension)."""
    return tensor.set_data_from_numpy(data, binary_data=False)


def outputs() -> list[triton.InferRequestedOutput]:
    return [triton.InferRequestedOutput(name, binary_data=False) for name in ("probability", "label")]


def test_the_triton_client_gets_v1s_probabilities_and_every_record_is_logged(
    served: Served, client: triton.InferenceServerClient, records: list
) -> None:
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(INFERENCE_MODEL)
    assert client.is_model_ready(INFERENCE_MODEL, served.version)
    metadata = client.get_model_metadata(INFERENCE_MODEL)
    assert [tensor["name"] for tensor in metadata["inputs"]] == list(FEATURE_NAMES)
    assert (metadata["versions"], metadata["platform"]) == ([served.version], "onnxruntime_onnx")

    matrix = np.array([[record[n] for n in FEATURE_NAMES] for record in records], dtype=np.float32)
    one = as_json(triton.InferInput("input-0", list(matrix.shape), "FP32"), matrix)
    named = [as_json(triton.InferInput(n, [len(matrix)], "FP32"), matrix[:, i]) for i, n in enumerate(FEATURE_NAMES)]
    ids = {"matrix": uuid.uuid4().hex, "named": uuid.uuid4().hex}
    answers = {
        "matrix": client.infer(
            INFERENCE_MODEL, [one], outputs=outputs(), request_id="r-1", headers={"X-Request-ID": ids["matrix"]}
        ),
        "named": client.infer(
            INFERENCE_MODEL, named, served.version, outputs=outputs(), headers={"X-Request-ID": ids["named"]}
        ),
    }
    v1 = requests.post(f"{served.app.url}/api/v1/predict", json=records, timeout=60).json()
    for answer in answers.values():
        # The ONNX graph computes in float32, so FP32 inputs give the very probabilities of v1's JSON numbers.
        assert answer.as_numpy("probability").tolist() == np.float32([a["probability"] for a in v1]).tolist()
        assert answer.as_numpy("label").tolist() == [a["label"] for a in v1]
        assert answer.get_response()["model_version"] == served.version
    assert answers["matrix"].get_response()["id"] == "r-1"

    rows = logged(served.app.log)
    for tag in ids.values():
        ours = rows[rows["client_request_id"] == tag]
        assert len(ours) == len(records) and set(ours["model_version"]) == {served.version}
        np.testing.assert_allclose(ours[list(FEATURE_NAMES)].to_numpy(), matrix, rtol=1e-6)
        np.testing.assert_allclose(ours["probability"], [a["probability"] for a in v1], atol=1e-6)


def test_the_triton_client_reads_our_refusals(
    served: Served, client: triton.InferenceServerClient, records: list
) -> None:
    before = len(logged(served.app.log))
    bad = np.array([[record[n] for n in FEATURE_NAMES] for record in records[:3]], dtype=np.float32)
    bad[2, FEATURE_NAMES.index("chol")] = 900
    tensor = triton.InferInput("input-0", list(bad.shape), "FP32")
    with pytest.raises(InferenceServerException) as invalid:
        client.infer(INFERENCE_MODEL, [as_json(tensor, bad)], outputs=outputs())
    assert invalid.value.status() == "422"
    assert "row 2, chol: Input should be less than or equal to 700" in invalid.value.message()
    with pytest.raises(InferenceServerException) as binary:
        client.infer(INFERENCE_MODEL, [tensor.set_data_from_numpy(bad)])  # the client's default: binary data
    assert binary.value.status() == "400" and "binary_data=False" in binary.value.message()
    with pytest.raises(InferenceServerException) as other:
        client.get_model_metadata(INFERENCE_MODEL, "999")
    assert other.value.status() == "404" and "not served" in other.value.message()
    assert not client.is_model_ready(INFERENCE_MODEL, "999")
    assert len(logged(served.app.log)) == before  # nothing refused was logged
