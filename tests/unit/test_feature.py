"""A feature's rule, as Feature.violations evaluates it, against what the declaration says, worked out by hand.

The rule has one evaluation, for one number (a single record) and for numpy arrays (files, served rows,
batches); these tests hold both kinds of input to the declared bounds, codes and whole-number flag.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from heartrisk.feature import Feature
from heartrisk.schema import BY_NAME, FEATURES, OUTPUT

COLUMNS = (*FEATURES, OUTPUT)
BUDGET = settings(max_examples=300, deadline=None, derandomize=True, database=None)


def expected(feature: Feature, value: float) -> set[str]:
    """The reasons the declaration gives to refuse a finite number."""
    reasons = set()
    if feature.dtype == "int" and value != math.floor(value):
        reasons.add("fraction")
    if feature.codes is not None:
        if value not in feature.codes:
            reasons.add("code")
    elif value < feature.minimum:
        reasons.add("below")
    elif value > feature.maximum:
        reasons.add("above")
    return reasons


def given_reasons(verdicts: list[tuple[Any, str]]) -> set[str]:
    return {reason for broken, reason in verdicts if broken}


def edges(feature: Feature) -> list[float]:
    """Numbers on and next to the declared bounds or codes."""
    points = list(feature.codes) if feature.codes is not None else [feature.minimum, feature.maximum]
    return [p + d for p in points for d in (-1, -0.5, -1e-9, 0, 1e-9, 0.5, 1)]


@st.composite
def feature_and_values(draw: st.DrawFn, *, size: int) -> tuple[Feature, list[float]]:
    feature = draw(st.sampled_from(COLUMNS))
    number = st.one_of(
        st.sampled_from(edges(feature)),
        st.integers(-1000, 1000),
        st.floats(-1000, 1000, allow_nan=False),
        st.integers(),  # pydantic hands a record's integers over as Python ints, however large
    )
    return feature, draw(st.lists(number, min_size=size, max_size=size if size == 1 else 80))


@BUDGET
@given(case=feature_and_values(size=1))
def test_one_number_gets_the_declared_verdict(case: tuple[Feature, list[float]]) -> None:
    feature, (value,) = case
    assert given_reasons(feature.violations(value)) == expected(feature, value), (feature.name, value)


@BUDGET
@given(case=feature_and_values(size=2))
def test_an_array_gets_the_declared_verdict_for_each_value(case: tuple[Feature, list[float]]) -> None:
    feature, values = case
    values = [float(v) for v in values if abs(v) < 1e300]  # as a CSV column or a batch holds them
    verdicts = feature.violations(np.array(values, dtype=float))
    for index, value in enumerate(values):
        assert given_reasons([(mask[index], reason) for mask, reason in verdicts]) == expected(feature, value)


def test_a_long_column_gets_the_same_verdicts_as_its_values_one_by_one() -> None:
    candidates = [-1, 0, 0.5, 1, 2, 3, 4, 5, 70, 200, 1000]
    values = np.resize(np.array(candidates, dtype=float), 100_000)
    for feature in COLUMNS:
        for mask, reason in feature.violations(values):
            alone = [{r: bool(m) for m, r in feature.violations(v)}[reason] for v in candidates]
            assert mask[: len(candidates)].tolist() == alone, (feature.name, reason)


def test_refused_adds_missing_and_infinite_values_to_the_rule() -> None:
    for feature in COLUMNS:
        low = min(feature.codes) if feature.codes is not None else feature.minimum
        values = np.array([low, math.nan, math.inf, -math.inf, low - 1])
        assert feature.refused(values).tolist() == [False, True, True, True, True], feature.name


def test_allowed_values_are_described_for_people() -> None:
    assert BY_NAME["age"].allowed() == "18 to 100 years"
    assert BY_NAME["oldpeak"].allowed() == "0 to 7 mm"
    assert BY_NAME["sex"].allowed() == "0 (Female), 1 (Male)"
    assert Feature("x", "X", "numeric", "float", minimum=0.5, maximum=2.25).allowed() == "0.5 to 2.25"
