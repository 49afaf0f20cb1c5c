"""Explanations on demand, for the API and the form: scored and explained by the same model version.

Nothing here runs for a request that does not ask: :mod:`heartrisk.explain` is imported, and the study's
background summarised (about a second of k-means), when a worker first explains; then kept for the
worker's life (the study's patients do not change while it runs).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from heartrisk.serving.runtime import Scored, runtime, score

if TYPE_CHECKING:
    from heartrisk.explain import Background, Explanation

_backgrounds: dict[Path, Background] = {}
_summarising = threading.Lock()


def background(path: Path) -> Background:
    """The summary of the study's patients in ``path`` (heart.csv), made once per worker."""
    with _summarising:
        if path not in _backgrounds:
            from heartrisk.data import deduplicate, features_and_target, load_csv
            from heartrisk.explain import Background

            features, diagnosis = features_and_target(deduplicate(load_csv(path)))
            _backgrounds[path] = Background.of(features.to_numpy(dtype=float), diagnosis.to_numpy())
        return _backgrounds[path]


def explained(features: np.ndarray) -> tuple[Scored, Explanation]:
    """Score one record as every prediction is scored (and logged), then explain that answer with the model
    that gave it: a promotion between the two cannot mix versions. Raises what :func:`score` raises."""
    from heartrisk.explain import explain

    scored = score(features)
    study = background(runtime().settings.data_path)
    return scored, explain(scored.model, features[0], study, scored.probabilities[0])
