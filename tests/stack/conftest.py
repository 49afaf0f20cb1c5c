"""The scale-out stack shared by tests/stack/scale_check.py and security_check.py: started once per session
(only when a test asks for it: compose_check.py has its own ``stack``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.scale_stack import Stack, started


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with started(tmp_path_factory) as running:
        yield running
