"""The purge package as the command and the flow use it: one name per kind, in purge order, each with the
words its sentence uses, and one function per kind behind one entry point."""

from __future__ import annotations

import heartrisk.purge
from heartrisk.purge import KINDS, WHAT
from heartrisk.purge.kinds import PURGES


def test_every_kind_has_its_purge_and_its_words_in_purge_order() -> None:
    assert KINDS == ("predictions", "snapshots", "reports", "mlflow_runs", "mails")
    assert tuple(PURGES) == KINDS and tuple(WHAT) == KINDS


def test_the_package_says_what_it_offers() -> None:
    assert set(heartrisk.purge.__all__) == {name for name in dir(heartrisk.purge) if not name.startswith("_")} - {
        "files", "kinds", "mlflow_runs", "result", "snapshots"}  # fmt: skip
