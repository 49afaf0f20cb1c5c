"""The fitted pipeline as an ONNX graph, and the check that it says what scikit-learn says.

scikit-learn checks its input on every call, which on one record costs 10 to 50 times the SVC itself;
ONNX Runtime runs the same graph in about 0.02 ms. The graph computes in float32 where scikit-learn
uses float64, so the two differ by about 1e-6: an export is trusted only when its probabilities match
scikit-learn's within :data:`TOLERANCE` on every row it is checked on (all training rows at export,
the reference rows again when the app loads it). An export that fails or disagrees is reported,
never raised: that version is served by scikit-learn.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

TOLERANCE = 1e-4  # largest accepted difference in probability, per row and class
ONNX_RUNTIME = "onnxruntime"
SKLEARN = "scikit-learn"
FILE_NAME = "model.onnx"
_PROBABILITIES = "probabilities"  # skl2onnx's output name without ZipMap: a plain (rows, classes) tensor


class OnnxModel:
    """One ONNX Runtime session on one thread, called like a scikit-learn classifier.

    One intra- and one inter-op thread: each gunicorn worker then uses one core, and requests run
    side by side in the worker's threads (a session may be run from many threads at once).
    onnxruntime is imported here, in the worker, never in gunicorn's master: importing it starts
    threads, and a process with threads must not fork.
    """

    def __init__(self, graph: bytes) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Probabilities per class, one row per record (rows of ``features`` in schema order)."""
        feed = {self.input: np.asarray(features, dtype=np.float32)}
        return self.session.run([_PROBABILITIES], feed)[0].astype(np.float64)


@dataclass(frozen=True)
class Export:
    """The outcome of one export: the graph when it can serve, or why not."""

    graph: bytes | None  # None when the conversion failed or disagreed with scikit-learn
    max_difference: float | None  # largest difference over the checked rows, when it could be measured
    rows: int
    problem: str = ""

    @property
    def runtime(self) -> str:
        """Which runtime serves this version: ONNX Runtime when the export is good, else scikit-learn."""
        return ONNX_RUNTIME if self.graph is not None else SKLEARN

    def note(self) -> str:
        """One sentence for the model card, the version's tags and the app's status."""
        if self.graph is not None:
            return (
                f"ONNX export matches scikit-learn on {self.rows} training rows "
                f"(largest difference {self.max_difference:.1e}, tolerance {TOLERANCE:.0e})"
            )
        return f"no ONNX export: {self.problem}; scikit-learn serves this version"


def to_onnx(pipeline: Any) -> bytes:
    """The pipeline as an ONNX graph: one float32 input in schema order, probabilities as a tensor."""
    from skl2onnx import to_onnx as convert

    with warnings.catch_warnings():  # skl2onnx reads SVC attributes scikit-learn 1.9 marks as deprecated
        warnings.simplefilter("ignore", FutureWarning)
        graph = convert(pipeline, np.zeros((1, pipeline.n_features_in_), dtype=np.float32), options={"zipmap": False})
    return graph.SerializeToString()


def max_difference(model: OnnxModel, pipeline: Any, features: np.ndarray) -> float:
    """Largest absolute difference between the two runtimes' probabilities on these rows."""
    with warnings.catch_warnings():  # the pipeline was fitted on a frame; columns are in schema order
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        expected = pipeline.predict_proba(features)
    return float(np.max(np.abs(model.predict_proba(features) - expected)))


def export(pipeline: Any, features: Any) -> Export:
    """Convert ``pipeline`` and check it on ``features`` (the training rows); never raises."""
    matrix = np.asarray(features, dtype=np.float64)
    try:
        graph = to_onnx(pipeline)
        difference = max_difference(OnnxModel(graph), pipeline, matrix)
    except Exception as exc:  # any converter or runtime failure means: serve scikit-learn
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        return Export(None, None, len(matrix), f"the conversion failed ({type(exc).__name__}: {first})")
    if not difference <= TOLERANCE:  # also refuses NaN
        problem = f"its probabilities differ from scikit-learn's by up to {difference:.1e} (tolerance {TOLERANCE:.0e})"
        return Export(None, difference, len(matrix), problem)
    return Export(graph, difference, len(matrix))
