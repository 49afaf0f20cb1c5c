"""pytest's internals that the xdist grouping relies on: a test's node id, and a fixture's early teardown.

Checked on pytest 9.2.0 with pytest-xdist 3.8.0: these fail when pytest changes them, in this very process
(``tests/unit/test_xdist_groups.py`` proves the grouping itself under ``-n 2 --dist loadgroup``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.pytest_compat import finish_fixture, set_node_id

TORN_DOWN: list[str] = []


@pytest.fixture
def resource() -> Iterator[str]:
    yield "up"
    TORN_DOWN.append("resource")


def test_a_test_takes_the_node_id_it_is_given(request: pytest.FixtureRequest) -> None:
    item = request.node
    before = item.nodeid
    try:
        set_node_id(item, f"{before}@group")
        assert item.nodeid == f"{before}@group", "pytest no longer reads a test's node id from Item._id (9.2.0 did)"
    finally:
        set_node_id(item, before)
    assert item.nodeid == before


def test_a_fixture_finished_early_is_torn_down_at_once_and_only_once(
    request: pytest.FixtureRequest, resource: str
) -> None:
    TORN_DOWN.clear()
    finish_fixture(request.node, "resource")
    assert TORN_DOWN == ["resource"], "FixtureDef.finish no longer tears the fixture down (it did on pytest 9.2.0)"
    finish_fixture(request.node, "resource")
    assert TORN_DOWN == ["resource"]
