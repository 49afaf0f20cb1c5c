"""Exact contributions of the 13 values to one served probability (Shapley values).

The game: for a set S of the record's values, v(S) is the model's probability averaged over a background of
the study's patients, each with the values of S replaced by the record's ("interventional" Shapley values).
v(all) is the served probability and v(none) the background's average, the *baseline*; the Shapley values
split the difference exactly, so the contributions add up to probability minus baseline.

All 2^13 = 8192 sets are evaluated, with no sampling. A background patient b enters only through the values
where it differs from the record (D_b): every set gives b one of 2^|D_b| distinct rows, so those are the
rows the model is asked, all in one batched call of the runtime that answered the request (ONNX Runtime,
or scikit-learn for a version without an export). A patient like the record on 4 of its 8 coded values
costs 512 rows instead of 8192. Measured against shap 0.51.0's exact explainer in docs/BENCHMARKS.md.

The background summarises the study's patients (heart.csv after de-duplication: 302): :data:`BACKGROUND_ROWS`
typical patients, shared between the diagnosed and the others by their numbers, each the k-means group's mean
(rounded as the schema stores it; the commonest code for a coded value, so every row is a valid record) and
weighted by the group's size. Why 32: each row costs up to 8192 model rows, and with 32 the baseline stays
within about 0.01 of the model's average over all 302 patients (docs/BENCHMARKS.md, "Explanations").
"""

from __future__ import annotations

from dataclasses import dataclass
from math import factorial
from typing import TYPE_CHECKING

import numpy as np

from heartrisk.schema import FEATURE_NAMES, FEATURES

if TYPE_CHECKING:
    from heartrisk.scoring import LoadedModel

BACKGROUND_ROWS = 32  # groups of the study's patients; why this many: docs/BENCHMARKS.md, "Explanations"
SEED = 0

_N = len(FEATURE_NAMES)
_SETS = np.arange(2**_N)
_MEMBERS = ((_SETS[:, None] >> np.arange(_N)) & 1).astype(bool)  # (8192, 13): is value j in set S
_SIZE = _MEMBERS.sum(axis=1)
# |S|! (n - |S| - 1)! / n!: the weight of adding a value to a set S of that size, over every order of the values
_WEIGHT = np.array([factorial(s) * factorial(_N - s - 1) / factorial(_N) for s in range(_N)] + [0.0])


@dataclass(frozen=True)
class Background:
    """Typical patients standing for the study's patients, and the share of the study each stands for."""

    rows: np.ndarray  # (k, 13), schema order
    weights: np.ndarray  # (k,), summing to 1
    patients: int  # how many patients they summarise

    @classmethod
    def of(cls, patients: np.ndarray, diagnosis: np.ndarray, groups: int = BACKGROUND_ROWS) -> Background:
        """Summarise ``patients`` (rows in schema order) into ``groups`` weighted typical patients: the groups
        shared between the diagnosed and the others by their numbers, then k-means within each."""
        rows, weights = [], []
        for label in np.unique(diagnosis):
            members = patients[diagnosis == label]
            share = round(groups * len(members) / len(patients))
            found, sizes = _typical(members, max(1, min(share, len(np.unique(members, axis=0)))))
            rows.append(found)
            weights.append(sizes / len(patients))
        return cls(np.vstack(rows), np.concatenate(weights), len(patients))


def _typical(patients: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """k-means groups of the standardised values; each group's typical patient (means rounded as the schema
    stores them, the commonest code) and its size."""
    from sklearn.cluster import KMeans  # only when a worker first explains (the app already has scikit-learn)

    scale = patients.std(axis=0)
    labels = KMeans(n_clusters=groups, n_init=10, random_state=SEED).fit_predict(
        (patients - patients.mean(axis=0)) / np.where(scale > 0, scale, 1)
    )
    typical = np.array([_typical_values(patients[labels == group]) for group in range(groups)])
    return typical, np.bincount(labels, minlength=groups)


def _typical_values(members: np.ndarray) -> list[float]:
    values = []
    for column, feature in enumerate(FEATURES):
        if feature.codes is not None:
            codes, counts = np.unique(members[:, column], return_counts=True)
            values.append(float(codes[np.argmax(counts)]))
        else:
            values.append(round(float(members[:, column].mean()), 0 if feature.dtype == "int" else 1))
    return values


@dataclass(frozen=True)
class Explanation:
    """What moved one probability away from the baseline, value by value, in probability units."""

    version: str  # the model version that answered, and computed this
    probability: float
    baseline: float
    contributions: dict[str, float]  # the schema's 13 names, in schema order

    def as_json(self) -> dict[str, object]:
        return {
            "version": self.version,
            "probability": self.probability,
            "baseline": self.baseline,
            "contributions": self.contributions,
        }


def explain(model: LoadedModel, record: np.ndarray, background: Background, probability: float) -> Explanation:
    """The exact Shapley values of ``probability``, which ``model`` gave for ``record`` (schema order)."""
    rows, lookups = _coalition_rows(np.asarray(record, dtype=float), background.rows)
    answers, _ = model.predict(rows)
    value = np.zeros(len(_SETS))
    for weight, (start, index) in zip(background.weights, lookups, strict=True):
        value += weight * answers[start + index]
    value[-1] = probability  # v(all values) is the served answer; the batch computed it too (float32: 1e-7 apart)
    contributions = shapley(value)
    return Explanation(
        model.version, float(probability), float(value[0]), dict(zip(FEATURE_NAMES, contributions, strict=True))
    )


def _coalition_rows(record: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
    """The distinct rows the game needs, and per background row (its first row, the row of each of the 8192 sets)."""
    blocks, lookups, start = [], [], 0
    for patient in background:
        differ = np.flatnonzero(patient != record)
        taken = ((np.arange(2 ** len(differ))[:, None] >> np.arange(len(differ))) & 1).astype(bool)
        block = np.tile(patient, (len(taken), 1))
        block[:, differ] = np.where(taken, record[differ], patient[differ])
        lookups.append((start, _MEMBERS[:, differ] @ (1 << np.arange(len(differ)))))
        blocks.append(block)
        start += len(block)
    return np.vstack(blocks), lookups


def shapley(value: np.ndarray) -> list[float]:
    """Shapley values of the game ``value`` (one number per set of the 13 values, indexed by bit mask)."""
    result = []
    for j in range(_N):
        without = _SETS[~_MEMBERS[:, j]]
        result.append(float(np.dot(_WEIGHT[_SIZE[without]], value[without | (1 << j)] - value[without])))
    return result
