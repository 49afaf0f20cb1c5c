"""A result as a person reads it: the values as entered (with their units), and an explanation in words.

"ST depression induced by exercise 2.3 mm raised it by 12 points": percentage points, the values that raised
the probability and those that lowered it, each largest first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from heartrisk.schema import BY_NAME, FEATURES

if TYPE_CHECKING:
    from heartrisk.explain import Explanation

BARELY = 0.05  # points: a contribution that rounds to 0.0 points is said to have barely moved it


@dataclass(frozen=True)
class Entered:
    """One value as the person gave it, and as the model read it when that differs (another unit)."""

    name: str
    label: str
    shown: str  # "6.18 mmol/L", "2.3 mm", "Asymptomatic"
    stored: str = ""  # "239 mg/dl" when entered in another unit


@dataclass(frozen=True)
class Reading:
    """An explanation in words: the sentences of the values that raised the probability, lowered it, barely moved it."""

    raised: list[str]
    lowered: list[str]
    barely: list[str]


def entered(clean: Mapping[str, float], raw: Mapping[str, str], units: Mapping[str, str]) -> dict[str, Entered]:
    """The 13 values for the result and its print: code texts for coded values, numbers with their unit."""
    found = {}
    for feature in FEATURES:
        value = clean[feature.name]
        if feature.codes is not None:
            found[feature.name] = Entered(feature.name, feature.label, feature.codes[int(value)])
            continue
        stored = f"{_number(value)} {feature.unit}".strip()
        unit = units.get(feature.name, feature.unit)
        if unit != feature.unit:
            found[feature.name] = Entered(feature.name, feature.label, f"{raw[feature.name]} {unit}", stored)
        else:
            found[feature.name] = Entered(feature.name, feature.label, stored)
    return found


def reading(explanation: Explanation, values: Mapping[str, Entered]) -> Reading:
    """The explanation's contributions as sentences, largest first within raised and lowered."""
    order = sorted(explanation.contributions.items(), key=lambda item: -abs(item[1]))
    said = Reading([], [], [])
    for name, contribution in order:
        points = abs(contribution) * 100
        value = values[name]
        subject = f"{value.label}: {value.shown}" if BY_NAME[name].codes is not None else f"{value.label} {value.shown}"
        if points < BARELY:
            said.barely.append(subject)
        elif contribution > 0:
            said.raised.append(f"{subject} raised it by {_points(points)}")
        else:
            said.lowered.append(f"{subject} lowered it by {_points(points)}")
    return said


def _points(points: float) -> str:
    shown = f"{points:.0f}" if points >= 1 else f"{points:.1f}".replace("1.0", "1")  # 0.96 is "1 point", not "1.0"
    return f"{shown} point" if shown == "1" else f"{shown} points"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
