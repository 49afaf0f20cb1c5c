"""The package: its names are the interface's, and importing it loads no database driver (an app worker on
SQLite never imports psycopg; the monitor's ADBC drivers load on its first window)."""

from __future__ import annotations

import subprocess
import sys

from heartrisk import predlog
from heartrisk.predlog import backends, base


def test_the_package_names_what_its_modules_define() -> None:
    for name in predlog.__all__:
        assert getattr(predlog, name) is getattr(base, name, None) or getattr(predlog, name) is getattr(backends, name)


def test_importing_the_package_loads_no_driver() -> None:
    drivers = ("psycopg", "adbc_driver_sqlite", "adbc_driver_postgresql", "sqlalchemy")
    code = f"import sys, heartrisk.predlog; print(sorted(m for m in {drivers!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
