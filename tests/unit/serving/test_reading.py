"""A result in words: values with their units, and the explanation's sentences largest first."""

from __future__ import annotations

from heartrisk.explain import Explanation
from heartrisk.schema import FEATURE_NAMES, VALID_RECORD
from heartrisk.serving.reading import entered, reading


def test_values_are_shown_with_their_unit_and_codes_by_their_text() -> None:
    clean = {**VALID_RECORD, "chol": 239.0, "oldpeak": 2.3, "cp": 0.0}
    raw = {name: str(value) for name, value in clean.items()} | {"chol": "6.18"}
    shown = entered(clean, raw, {"chol": "mmol/L"})
    assert (shown["chol"].shown, shown["chol"].stored) == ("6.18 mmol/L", "239 mg/dl")
    assert (shown["oldpeak"].shown, shown["oldpeak"].stored) == ("2.3 mm", "")
    assert shown["cp"].shown == "Asymptomatic"
    assert entered(clean, raw, {"chol": "mg/dl"})["chol"].shown == "239 mg/dl"


def test_the_explanation_in_words_raised_and_lowered_each_largest_first() -> None:
    clean = {**VALID_RECORD, "oldpeak": 2.3}
    contributions = dict.fromkeys(FEATURE_NAMES, 0.0) | {"oldpeak": 0.12, "cp": 0.2, "age": -0.004, "sex": -0.0096}
    explanation = Explanation("3", 0.6, 0.4, contributions)
    said = reading(explanation, entered(clean, {n: str(v) for n, v in clean.items()}, {}))
    assert said.raised == [
        "Chest pain type: Asymptomatic raised it by 20 points",
        "ST depression induced by exercise 2.3 mm raised it by 12 points",
    ]
    assert said.lowered == ["Sex: Female lowered it by 1 point", "Age 18 years lowered it by 0.4 points"]
    assert len(said.barely) == len(FEATURE_NAMES) - 4
