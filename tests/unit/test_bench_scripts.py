"""Every benchmark script still starts: its imports resolve and its options parse.

Benchmarks run by hand, not in CI, so a change elsewhere can break one unnoticed (bench/predlog.py
imported a helper that a later change to bench/serve.py had removed). ``--help`` runs the imports and
the argument parser and nothing else. Each runs in this process as ``python bench/<script> --help`` would
(the script's folder first on ``sys.path``, run as ``__main__``): a child process per script paid about
2 s of CPU to import NumPy, pandas and scikit-learn again.
"""

from __future__ import annotations

import re
import runpy
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = sorted(path for path in BENCH.glob("*.py") if not path.name.startswith("_"))


def test_there_are_benchmarks_to_check() -> None:
    assert {path.name for path in SCRIPTS} >= {"serve.py", "drift.py", "predlog.py", "model_quality.py"}


def test_the_benchmarks_share_the_tests_harness() -> None:
    """Issue 32 found the app started three ways and ``BIN`` defined four times in bench/: the app, the load
    and the memory come from tests/support (through bench/_common.py), the scripts folder from the config."""
    for path in BENCH.glob("*.py"):
        text = path.read_text()
        assert not re.search(r"^BIN\s*=", text, re.M), f"{path.name} defines BIN: import it from heartrisk.config"
        assert '"heartrisk"), "serve"' not in text, f"{path.name} starts the app itself: use app_server"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_the_script_imports_and_parses_its_options(
    script: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.setattr(sys, "argv", [str(script), "--help"])
    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(str(script), run_name="__main__")
    assert stopped.value.code == 0
    assert "usage:" in capsys.readouterr().out
