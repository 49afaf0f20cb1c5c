"""The shape of the code: one-way imports, short functions, a test file for every module, names kept."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.support.paths import ROOT

PACKAGE = ROOT / "src" / "heartrisk"
MAX_LINES = 60
DECLARATIVE = {"openapi_document", "get_settings"}  # one literal each: the OpenAPI document; one line per setting
# Loaded by path by a tool, and tested by running it: gunicorn's config file, Alembic's migration scripts
# (tests/unit/predlog/test_migrate.py runs them on both backends).
LOADED_BY_TOOLS = ("gunicorn_conf", "migrations")


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (``heartrisk.serving.web``)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, package: str) -> set[str]:
    """The heartrisk modules a module imports, at any depth of its code."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("heartrisk")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("heartrisk"):
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    known = modules()
    return {name for name in found if name in known and name != package}


def test_no_import_cycle_among_heartrisk_modules() -> None:
    graph = {name: imports(path, name) for name, path in modules().items()}
    graph = {name: {dep for dep in deps if not name.startswith(dep + ".")} for name, deps in graph.items()}
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for dep in sorted(graph[name]):
            assert state.get(dep) != "open", "import cycle: " + " -> ".join([*trail, name, dep])
            if dep not in state:
                visit(dep, [*trail, name])
        state[name] = "done"

    for name in graph:
        if name not in state:
            visit(name, [])


def test_no_function_is_longer_than_sixty_lines() -> None:
    long = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name not in DECLARATIVE:
                length = node.end_lineno - node.lineno + 1
                if length > MAX_LINES:
                    long.append(f"{name}.{node.name}: {length} lines")
    assert long == []


def test_every_module_has_its_unit_test_file() -> None:
    missing = []
    for name in modules():
        parts = name.split(".")[1:]
        if not parts or set(parts) & set(LOADED_BY_TOOLS) or _only_a_docstring(modules()[name]):
            continue  # the package, files a tool loads by path, an empty __init__
        test = ROOT / "tests" / "unit" / Path(*parts[:-1]) / f"test_{parts[-1]}.py"
        if not test.is_file():
            missing.append(str(test.relative_to(ROOT)))
    assert missing == []


def _only_a_docstring(path: Path) -> bool:
    body = ast.parse(path.read_text()).body
    return len(body) == 1 and isinstance(body[0], ast.Expr)


def test_monitor_refuses_a_bad_csv_without_loading_prefect_mlflow_or_evidently(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("age,sex\n400,1\n")
    code = (
        "import sys\nfrom heartrisk.cli import main\n"
        f"code = main(['monitor', '--current', {str(bad)!r}])\n"
        "heavy = sorted(m for m in ('prefect', 'mlflow', 'evidently') if m in sys.modules)\n"
        "print(code, heavy)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.stdout.strip().splitlines()[-1] == "2 []", done.stdout + done.stderr
    assert "missing column(s)" in done.stderr
