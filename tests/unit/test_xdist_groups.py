"""The grouping ``make test`` relies on: under ``-n 2 --dist loadgroup`` a group's tests run on one worker,
so the session fixture they share is set up once (pytest 9.2 lost that silently, pytest-xdist#1386), and
it is torn down as soon as the last test that needs it has run, not at the end of the session."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.paths import ROOT

CONFTEST = """
import os
import pytest
from tests.support.xdist_groups import finish_unneeded, place_in_groups

def note(event):
    with open(EVENTS / os.environ.get("PYTEST_XDIST_WORKER", "main"), "a") as events:
        events.write(event + "\\n")

@pytest.fixture(scope="session")
def slow():
    note("setup")
    yield
    note("teardown")

@pytest.fixture(autouse=True)
def _each(request):
    note(request.node.name)

def group_of(item):
    return "slow" if "slow" in item.fixturenames or item.name == "test_between" else None

def pytest_collection_modifyitems(config, items):
    place_in_groups(config, items, group_of)

@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    finish_unneeded(item, nextitem, ["slow"])
"""
TESTS = """
import pytest

@pytest.mark.parametrize("n", range(4))
def test_shares(slow, n):
    pass

def test_between():
    pass

@pytest.mark.parametrize("n", range(4))
def test_shares_again(slow, n):
    pass

@pytest.mark.parametrize("n", range(8))
def test_alone(n):
    pass
"""
SHARED = [f"test_shares[{n}]" for n in range(4)] + ["test_between"] + [f"test_shares_again[{n}]" for n in range(4)]


def _run(tmp_path: Path, *args: str) -> tuple[str, dict[str, list[str]]]:
    """Run the small suite above with these pytest options: its output, and each process's events in order."""
    events = tmp_path / "events"
    events.mkdir()
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "pytest.ini").write_text("[pytest]\n")
    (suite / "conftest.py").write_text(f"from pathlib import Path\nEVENTS = Path({str(events)!r})\n{CONFTEST}")
    (suite / "test_grouped.py").write_text(TESTS)
    outside_xdist = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}  # as if run by hand
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "xdist.plugin", "-v", *args, str(suite)],
        cwd=suite,
        env={**outside_xdist, "PYTHONPATH": str(ROOT), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},  # xdist alone: seconds
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout, {path.name: path.read_text().split() for path in events.iterdir()}


def test_a_group_runs_on_one_worker_and_its_session_fixture_starts_once(tmp_path: Path) -> None:
    output, events = _run(tmp_path, "-n", "2", "--dist", "loadgroup")
    ran = re.findall(r"\[(gw\d)\] \[\s*\d+%\] PASSED \S+::(test_\w+)(?:\[\d\])?(@slow)?", output)
    assert len(ran) == 17, output[-3000:]
    shared = {(worker, suffix) for worker, name, suffix in ran if name != "test_alone"}
    assert len(shared) == 1 and next(iter(shared))[1] == "@slow", output[-3000:]
    worker = next(iter(shared))[0]
    assert [e for log in events.values() for e in log if e in ("setup", "teardown")] == ["setup", "teardown"]
    group = events[worker]
    start = group.index("setup")
    # on its worker the group runs without a break, and the fixture goes right after its last user
    assert group[start : start + len(SHARED) + 2] == ["setup", *SHARED, "teardown"], group


def test_alone_the_fixture_goes_after_its_last_user_before_the_other_tests(tmp_path: Path) -> None:
    """Alone, pytest knows every later test."""
    _, events = _run(tmp_path, "-p", "no:xdist")
    assert events["main"] == ["setup", *SHARED, "teardown", *(f"test_alone[{n}]" for n in range(8))]


def test_under_a_schedule_that_scatters_tests_the_fixture_stays_to_the_end(tmp_path: Path) -> None:
    """A worker under ``--dist load`` cannot know which tests it runs later: set up once, torn down last."""
    _, events = _run(tmp_path, "-n", "2", "--dist", "load")
    for log in events.values():
        assert log.count("setup") <= 1 and ("setup" not in log or log[-1] == "teardown"), log
