"""Every benchmark script still starts: its imports resolve and its options parse.

Benchmarks run by hand, not in CI, so a change elsewhere can break one unnoticed (bench/predlog.py
imported a helper that a later change to bench/serve.py had removed). ``--help`` runs the imports and
the argument parser and nothing else.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = sorted(path for path in BENCH.glob("*.py") if not path.name.startswith("_"))


def test_there_are_benchmarks_to_check() -> None:
    assert {path.name for path in SCRIPTS} >= {"serve.py", "drift.py", "predlog.py", "model_quality.py"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_the_script_imports_and_parses_its_options(script: Path) -> None:
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout
