"""The grouping ``make test`` relies on: under ``-n 2 --dist loadgroup`` a group's tests run on one worker,
so the session fixture they share is set up once (pytest 9.2 lost that silently, pytest-xdist#1386)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.paths import ROOT

CONFTEST = """
import pytest
from tests.support.xdist_groups import place_in_groups

@pytest.fixture(scope="session")
def slow(tmp_path_factory):
    (SETUPS / tmp_path_factory.getbasetemp().name).touch()  # one file per worker that set it up

def pytest_collection_modifyitems(config, items):
    place_in_groups(config, items, lambda item: "slow" if "slow" in item.fixturenames else None)
"""
TESTS = """
import pytest

@pytest.mark.parametrize("n", range(8))
def test_shares(slow, n):
    pass

@pytest.mark.parametrize("n", range(8))
def test_alone(n):
    pass
"""


def test_a_group_runs_on_one_worker_and_its_session_fixture_starts_once(tmp_path: Path) -> None:
    setups = tmp_path / "setups"
    setups.mkdir()
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "pytest.ini").write_text("[pytest]\n")
    (suite / "conftest.py").write_text(f"from pathlib import Path\nSETUPS = Path({str(setups)!r})\n{CONFTEST}")
    (suite / "test_grouped.py").write_text(TESTS)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "xdist.plugin", "-n", "2", "--dist", "loadgroup", "-v", str(suite)],
        cwd=suite,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},  # xdist alone: seconds
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ran = re.findall(r"\[(gw\d)\] \[\s*\d+%\] PASSED \S+::(test_\w+)\[\d\](@slow)?", done.stdout)
    assert len(ran) == 16, done.stdout[-3000:]
    shared = {(worker, suffix) for worker, name, suffix in ran if name == "test_shares"}
    assert len(shared) == 1 and next(iter(shared))[1] == "@slow", done.stdout[-3000:]
    assert len(list(setups.iterdir())) == 1
