"""The shape of the code: one-way imports, short functions, a test file for every module, names kept."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import ROOT
from tests.support.servers import free_port

PACKAGE = ROOT / "src" / "heartrisk"
MAX_LINES = 60
DECLARATIVE = {"openapi_document"}  # one literal: the OpenAPI document
# Loaded by path by a tool, and tested by running it: gunicorn's config file, Alembic's migration scripts
# (tests/unit/predlog/test_migrate.py runs them on both backends).
LOADED_BY_TOOLS = ("gunicorn_conf", "migrations")
COMPAT = "heartrisk._compat"  # the only modules that may use another library's internals
# Library internals whose names do not start with "_": only the compat modules may name them.
UNPREFIXED_INTERNALS = {
    "LocalState",  # Evidently's workspace file store (evidently.ui.storage.local.base)
    "generate_trial",  # hyperopt.fmin's helper behind generate_trials_to_calculate
    "Domain",  # what hyperopt's fmin makes of an objective and its space
    "murder_keepalived",  # gunicorn's gthread loop: its hooks and connection queues
    "murder_pending",
    "keepalived_conns",
    "pending_conns",
    "ModelsArtifactRepository",  # MLflow's models:/ resolution, which ignores the registry URI it is given
}
# The standard library's private names the package may use: they change only with Python, which the project
# pins (3.11). argparse has no public name for what ArgumentParser.add_subparsers returns.
STDLIB_INTERNALS = {"argparse._SubParsersAction"}


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


MAX_MODULE_LINES = 300
MAX_INIT_LINES = 40  # a package's __init__ says what the package is and re-exports; the code lives in modules


def test_no_module_outgrows_one_job() -> None:
    """A module over 300 lines, or a package ``__init__`` over 40, has grown a second job: split it."""
    large = []
    for name, path in modules().items():
        limit = MAX_INIT_LINES if path.name == "__init__.py" else MAX_MODULE_LINES
        lines = len(path.read_text().splitlines())
        if lines > limit:
            large.append(f"{name} ({path.name}): {lines} lines, at most {limit}")
    assert large == []


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


def test_purge_runs_without_prefect_and_loads_evidently_only_for_a_workspace(tmp_path: Path) -> None:
    """The command purges where Prefect is down or absent; Evidently (seconds of imports) only when there are
    snapshots to look at. (MLflow does not answer here: that kind fails, the command exits 1.)"""
    code = (
        "import sys\nfrom heartrisk.cli import main\n"
        "code = main(['predictions', 'purge', '--older-than', '30'])\n"
        "heavy = sorted(m for m in ('prefect', 'evidently') if m in sys.modules)\n"
        "print(code, heavy)"
    )
    mlflow = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "HEARTRISK_STATE_DIR": str(tmp_path), "MLFLOW_TRACKING_URI": mlflow}
    env.pop("HEARTRISK_EVIDENTLY_WORKSPACE", None)
    command = [sys.executable, "-c", code]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=env)
    assert done.stdout.strip().splitlines()[-1] == "1 []", done.stdout + done.stderr
    assert f"MLflow unreachable at {mlflow}" in done.stderr


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _imported(tree: ast.Module) -> dict[str, str]:
    """Each name a module binds by import, and the module it comes from (``np``: ``numpy``)."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.asname: a.name for a in node.names if a.asname}
            found |= {a.name.split(".")[0]: a.name.split(".")[0] for a in node.names if not a.asname}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found |= {a.asname or a.name: node.module for a in node.names}
    return found


def _third_party(module: str) -> bool:
    root = module.split(".")[0]
    return root != "heartrisk" and root not in sys.stdlib_module_names


def _skips_base_init(node: ast.ClassDef, origins: dict[str, str]) -> bool:
    """A class of another library's base whose ``__init__`` never calls ``super().__init__()``."""
    bases = [b.id for b in node.bases if isinstance(b, ast.Name) and _third_party(origins.get(b.id, "heartrisk"))]
    init = next((f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
    calls = [] if init is None else [c for c in ast.walk(init) if isinstance(c, ast.Attribute) and c.attr == "__init__"]
    return bool(bases) and init is not None and not calls


def _private_imports(node: ast.AST) -> list[str]:
    """The private modules or names of another library an import statement brings in."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if _third_party(a.name) and any(map(_private, a.name.split(".")))]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and _third_party(node.module):
        private = any(map(_private, node.module.split(".")))
        return [f"{node.module}.{a.name}" for a in node.names if private or _private(a.name)]
    return []


def _name_of(node: ast.AST) -> str | None:
    """The name a node reads, sets, imports or defines, if it has one."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.alias | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return node.name
    return None


def _internals_of(node: ast.AST, origins: dict[str, str], ours: set[str]) -> list[str]:
    """What ``node`` uses of another library's internals."""
    found = _private_imports(node)
    if isinstance(node, ast.Attribute) and _private(node.attr):
        on_self = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
        found += [] if on_self and node.attr in ours else [ast.unparse(node)]
    if isinstance(node, ast.ClassDef) and _skips_base_init(node, origins):
        found.append(f"{node.name}.__init__ without super().__init__()")
    if _name_of(node) in UNPREFIXED_INTERNALS:
        found.append(str(_name_of(node)))
    return found


def _private_names_defined(tree: ast.Module) -> set[str]:
    """The private methods, class attributes and ``self`` attributes a module defines."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found.add(node.name)
        elif isinstance(node, ast.Name | ast.Attribute) and isinstance(node.ctx, ast.Store):
            found.add(node.id if isinstance(node, ast.Name) else node.attr)
    return {name for name in found if _private(name)}


def internal_uses(source: str, ours: set[str]) -> list[str]:
    """Another library's internals a module's source uses, as ``line: what``; ``ours``: the package's own
    private names, so that ``self._x`` is caught only when ``_x`` comes from another library's base class."""
    tree = ast.parse(source)
    origins = _imported(tree)
    uses = {(node.lineno, what) for node in ast.walk(tree) for what in _internals_of(node, origins, ours)}
    return [f"{line}: {what}" for line, what in sorted(uses) if what not in STDLIB_INTERNALS]


def test_only_the_compat_modules_use_other_libraries_internals() -> None:
    package = {name: path.read_text() for name, path in modules().items() if not name.startswith(COMPAT)}
    ours = set().union(*(_private_names_defined(ast.parse(source)) for source in package.values()))
    found = {name: uses for name, source in package.items() if (uses := internal_uses(source, ours))}
    assert found == {}, f"move these behind {COMPAT} (a module per library, with its version condition and test)"


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("from evidently.ui.storage.local.base import LocalState", "1: LocalState"),
        ("from hyperopt.fmin import generate_trial", "1: generate_trial"),
        ("import hyperopt\nhyperopt.Domain(f, space)", "2: Domain"),
        ("from _pytest.nodeid import NodeId", "1: _pytest.nodeid.NodeId"),
        ("import mlflow.store._unity_catalog", "1: mlflow.store._unity_catalog"),
        ("from mlflow.utils import _get_fully_qualified_class_name", "1: mlflow.utils._get_fully_qualified_class_name"),
        ("item._id = 1", "1: item._id"),
        ("class Files(State):\n    def write(self):\n        return self._snapshot_dir(1)", "3: self._snapshot_dir"),
        ("class W(ThreadWorker):\n    def murder_keepalived(self): ...", "2: murder_keepalived"),
        ("from x import Workspace\nclass W(Workspace):\n    def __init__(self):\n        self.x = 1", "2: W.__init__"),
        ("import sys\nsys._getframe()", "2: sys._getframe"),  # not allowed: decide, then list it
    ],
)
def test_the_check_catches_each_kind_of_internal(source: str, caught: str) -> None:
    assert any(use.startswith(caught) for use in internal_uses(source, ours={"_own"}))


@pytest.mark.parametrize(
    "source",
    [
        "import argparse\nx: argparse._SubParsersAction",
        "from __future__ import annotations\nclass A:\n    def __init__(self):\n        self._own = 1",
        "from abc import ABC\nclass Log(ABC):\n    def __init__(self):\n        self._own = 1",
        "class Log(Base):\n    def __init__(self):\n        super().__init__()\n        self._own()",
        "from heartrisk.config import _settings",
    ],
)
def test_the_check_leaves_the_packages_own_names_and_the_allowed_ones_alone(source: str) -> None:
    assert internal_uses(source, ours={"_own"}) == []
