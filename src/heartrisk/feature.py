"""One input column: what it declares, and the one evaluation of its rule.

A :class:`Feature` says how a column is stored (``dtype``), shown (label, unit, step, help) and checked. The
rule is declared once, in three fields: a whole number when ``dtype`` is ``"int"``, and one of ``codes``
when it has codes, else a number from ``minimum`` to ``maximum``. :meth:`Feature.violations` is the only
code that applies it: CSV files and served rows (:mod:`heartrisk.data`), single records and JSON batches
(:mod:`heartrisk.schema`) all call it and differ only in how they word a refusal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Kind = Literal["numeric", "categorical"]
Reason = Literal["fraction", "code", "below", "above"]


@dataclass(frozen=True)
class Feature:
    """One input column: how it is stored, shown and checked."""

    name: str
    label: str
    kind: Kind
    dtype: Literal["int", "float"]
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    step: float = 1
    codes: Mapping[int, str] | None = None
    help: str = ""
    other_units: Mapping[str, float] | None = None  # units a person may enter instead, each as a factor to ``unit``

    def allowed(self) -> str:
        """Human description of the allowed values, used in every error message."""
        if self.codes is not None:
            return ", ".join(f"{code} ({text})" for code, text in self.codes.items())
        unit = f" {self.unit}" if self.unit else ""
        return f"{_fmt(self.minimum)} to {_fmt(self.maximum)}{unit}"

    def in_stored_unit(self, value: float, unit: str) -> float:
        """``value`` entered in ``unit`` (``unit`` itself or one of ``other_units``) as the column stores it: converted,
        then rounded to the column's precision (a whole number for an int column: the study recorded no finer)."""
        factor = 1.0 if unit == self.unit else (self.other_units or {})[unit]
        return float(round(value * factor)) if self.dtype == "int" else round(value * factor, 1)

    def allowed_in(self, unit: str) -> str:
        """:meth:`allowed` in one of ``other_units`` (the range converted, two decimals)."""
        factor = 1.0 if unit == self.unit else (self.other_units or {})[unit]
        return f"{self.minimum / factor:.2f} to {self.maximum / factor:.2f} {unit}"

    def violations(self, values: Any) -> list[tuple[Any, Reason]]:
        """Which values break the rule, as one (verdict, reason) pair per reason the rule can give.

        ``values`` is one number (a single record: each verdict is a bool) or a numpy array (a file, served
        rows, a JSON batch: each verdict is a mask). Only operators that mean the same on both are used, so
        there is no second copy of the rule to keep in step: one number costs 0.2 to 0.7 us, a column of a
        million 0.2 to 1.4 ms. NaN is the caller's to name (a missing value), see :meth:`refused`.
        """
        broken: list[tuple[Any, Reason]] = []
        if self.dtype == "int":
            broken.append((np.floor(values) != values, "fraction"))
        if self.codes is not None:
            first, *others = self.codes
            invalid = values != first
            for code in others:  # a pass per code: np.isin costs 20 us even on one value
                invalid &= values != code
            broken.append((invalid, "code"))
        else:
            broken += [(values < self.minimum, "below"), (values > self.maximum, "above")]
        return broken

    def refused(self, values: np.ndarray) -> np.ndarray:
        """Which values of an array the column cannot hold: missing or not finite, or breaking the rule."""
        refused = ~np.isfinite(values)
        for broken, _ in self.violations(values):
            refused |= broken
        return refused


def _fmt(number: float | None) -> str:
    if number is None:
        return "?"
    return str(int(number)) if float(number).is_integer() else f"{number:g}"
