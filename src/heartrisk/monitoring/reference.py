"""The reference data, and on it the champion's probability and label: what prediction drift compares with."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from heartrisk import signing
from heartrisk.data import read_schema_csv, sha256
from heartrisk.drift import LABEL, PROBABILITY
from heartrisk.registry import Registry
from heartrisk.schema import FEATURE_NAMES
from heartrisk.scoring import LoadedModel
from heartrisk.settings import Settings


@task(name="read-reference-data", cache_policy=NO_CACHE)
def read_reference(reference: str, settings: Settings, predictions: bool) -> tuple[pd.DataFrame, str]:
    """The reference data; when the current data comes from the prediction log (``predictions``), with the
    champion's probability and label on each row. Returns the frame and a note: the champion's version,
    or why the reference has no predictions (a CSV as current data, no champion, MLflow unreachable).

    A champion this stack must not load (unsigned, signed by another key, changed since it was signed), or
    no key to check it with, stops the run with that reason: the app refuses that version too, so the
    operator has to act, and a monitor that went on would hide it.
    """
    frame = read_schema_csv(reference)
    if not predictions:
        return frame, "the current data has no served predictions (a CSV)"
    try:
        scores, version = champion_scores(settings, Path(reference), frame)
    except (signing.Untrusted, signing.KeyMissing):
        raise
    except Exception as exc:  # prediction drift is one result among others: its absence must not stop the run
        return frame, f"the champion could not score the reference data: {str(exc).strip() or type(exc).__name__}"
    return frame.assign(**{PROBABILITY: scores[PROBABILITY], LABEL: scores[LABEL]}), f"champion v{version}"


def champion_scores(settings: Settings, path: Path, frame: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The champion's probability and label for each reference row, as the app computes them.

    Kept in ``<state>/reference-scores`` per champion and reference file, so a run loads the model only
    after a promotion (loading it costs about a second; a cached file, milliseconds). The champion's signature
    is checked either way; its files, when it is loaded (:meth:`heartrisk.registry.Registry.load`).
    """
    registry = Registry.of(settings.mlflow)
    champion = registry.champion()
    if champion is None:
        raise LookupError(f"no champion yet ({settings.mlflow.model_name}@{settings.mlflow.champion_alias})")
    registry.check_signature(champion)
    identity = [settings.mlflow.tracking_uri, registry.name, champion.version, champion.signature, sha256(path)]
    key = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]
    cache = settings.state_dir / "reference-scores" / f"{registry.name}-v{champion.version}-{key}.csv"
    if cache.is_file():
        return pd.read_csv(cache), champion.version
    model = LoadedModel.of(registry.name, champion.version, registry.load(champion.version).pipeline)
    probability, label = model.predict(frame[list(FEATURE_NAMES)].to_numpy(dtype=float))
    scores = pd.DataFrame({PROBABILITY: probability, LABEL: label})
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(".tmp")
    scores.to_csv(partial, index=False)
    partial.replace(cache)
    return scores, champion.version
