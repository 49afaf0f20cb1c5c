"""pytest's internals that the xdist grouping (``tests/support/xdist_groups.py``) relies on, in one place.

Checked on pytest 9.2.0 with pytest-xdist 3.8.0; ``tests/unit/test_pytest_compat.py`` fails when pytest
changes them.
"""

from __future__ import annotations

import pytest
from _pytest.nodeid import NodeId  # pytest 9.2's node id: the scheduler reads the group from its string


def set_node_id(item: pytest.Item, nodeid: str) -> None:
    """Give a test another node id (what xdist's ``LoadGroupScheduling`` splits its group from, at ``@``).

    pytest-xdist 3.8 appends ``@group`` itself, which pytest 9.2 no longer lets it do (pytest-xdist#1386);
    pytest keeps the id in the private ``Item._id``, a ``NodeId``. Can go when pytest-xdist#1386 is fixed:
    then the ``xdist_group`` mark does it.
    """
    item._id = NodeId.parse(nodeid)


def finish_fixture(item: pytest.Item, name: str) -> None:
    """Tear down the fixture ``name`` of ``item`` now; a later test that needs it sets it up again.

    pytest has no public call for this; ``FixtureDef.finish`` is what pytest itself calls when a
    parametrized fixture changes value, reached through the private ``Item._fixtureinfo`` and
    ``Item._request``. Can go when pytest offers a public way to end a fixture early.
    """
    for fixturedef in item._fixtureinfo.name2fixturedefs.get(name, ()):
        fixturedef.finish(item._request)
