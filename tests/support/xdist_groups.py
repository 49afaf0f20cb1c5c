"""Which pytest-xdist worker runs a test: the tests that share a slow session server form a group, and
``--dist loadgroup`` sends a group to one worker, so that server starts once.

pytest-xdist 3.8 names a test's group by appending ``@group`` to its node id, which pytest 9.2 no longer
lets it do (pytest-xdist#1386: the grouping is silently lost and every worker starts every server). We
append the suffix ourselves, on the id pytest 9.2 keeps, and ``tests/unit/test_xdist_groups.py`` runs a
small suite under ``-n 2 --dist loadgroup`` to prove that a group still lands on one worker.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import pytest

from tests.support.pytest_compat import finish_fixture, set_node_id

GROUP = pytest.StashKey[str | None]()


def place_in_groups(
    config: pytest.Config, items: Sequence[pytest.Item], group_of: Callable[[pytest.Item], str | None]
) -> None:
    """Give each test ``group_of(test)`` as its xdist group (``None``: no group, it runs wherever)."""
    loadgroup = getattr(config.option, "loadgroup", False)  # set on xdist's workers under --dist loadgroup only
    for item in items:
        group = item.stash[GROUP] = group_of(item)
        if loadgroup and group is not None and not item.nodeid.endswith(f"@{group}"):
            set_node_id(item, f"{item.nodeid}@{group}")  # what LoadGroupScheduling splits on


def later_items(item: pytest.Item, nextitem: pytest.Item | None) -> Sequence[pytest.Item] | None:
    """The tests this process runs after ``item``, as far as it can know (``None``: it cannot).

    Alone, pytest runs ``session.items`` in order. A worker under ``--dist loadgroup`` knows its next test
    and the rest of the group ``item`` is in: the scheduler sends a whole group to one worker, which runs
    it in order without a break. Other xdist schedules scatter the tests: unknown.
    """
    if nextitem is None:
        return []
    worker = bool(os.environ.get("PYTEST_XDIST_WORKER"))
    if worker and not getattr(item.config.option, "loadgroup", False):
        return None
    items = item.session.items
    after = items[items.index(item) + 1 :]
    if not worker:
        return after
    group = item.stash.get(GROUP, None)
    return [nextitem, *(other for other in after if group is not None and other.stash.get(GROUP, None) == group)]


def finish_unneeded(item: pytest.Item, nextitem: pytest.Item | None, names: Sequence[str]) -> None:
    """Tear down these session fixtures as soon as no later test of this process needs them.

    A session fixture otherwise lives until the whole session ends: the session's app, Prefect server and
    worker went on polling for minutes after their group had finished, taking CPU from the other worker's
    tests. pytest has no public call for this (:func:`tests.support.pytest_compat.finish_fixture`). A test
    that needs the fixture again later sets it up again.
    """
    later = later_items(item, nextitem)
    if later is None:
        return
    for name in names:
        if name not in item.fixturenames or any(name in other.fixturenames for other in later):
            continue
        finish_fixture(item, name)
