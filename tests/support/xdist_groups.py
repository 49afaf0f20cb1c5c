"""Which pytest-xdist worker runs a test: the tests that share a slow session server form a group, and
``--dist loadgroup`` sends a group to one worker, so that server starts once.

pytest-xdist 3.8 names a test's group by appending ``@group`` to its node id, which pytest 9.2 no longer
lets it do (pytest-xdist#1386: the grouping is silently lost and every worker starts every server). We
append the suffix ourselves, on the id pytest 9.2 keeps, and ``tests/unit/test_xdist_groups.py`` runs a
small suite under ``-n 2 --dist loadgroup`` to prove that a group still lands on one worker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from _pytest.nodeid import NodeId  # pytest 9.2's node id: the scheduler reads the group from its string


def place_in_groups(
    config: pytest.Config, items: Sequence[pytest.Item], group_of: Callable[[pytest.Item], str | None]
) -> None:
    """Give each test ``group_of(test)`` as its xdist group (``None``: no group, it runs wherever)."""
    if not getattr(config.option, "loadgroup", False):  # set on xdist's workers under --dist loadgroup only
        return
    for item in items:
        group = group_of(item)
        if group is not None and not item.nodeid.endswith(f"@{group}"):
            item._id = NodeId.parse(f"{item.nodeid}@{group}")  # what LoadGroupScheduling splits on
