"""The ``heartrisk`` command as users run it, in a child process or through its ``main`` here, and its JSON line."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

from heartrisk.config import BIN


def heartrisk(
    *args: str, env: dict[str, str], timeout: float = 600, stdin: str | None = None, unset: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """Run ``heartrisk ARGS`` with ``env`` over this environment, minus ``unset``; the output is kept."""
    merged = {key: value for key, value in {**os.environ, **env}.items() if key not in unset}
    return subprocess.run(
        [str(BIN / "heartrisk"), *args],
        env=merged,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def heartrisk_here(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``heartrisk ARGS`` through the command's own ``main`` in this process, with ``env`` over the environment.

    The same parser, settings, flow, servers and JSON line as the command, without a new interpreter's
    imports: a ``heartrisk monitor`` process spends about 10 s of CPU before its flow starts (Evidently
    6 s of it), which a test process pays once. Prefect's own log lines go to the test's captured output,
    not to the result's ``stderr``; tests that read those lines run the command in a child process.
    """
    from heartrisk.cli import main

    out, err = io.StringIO(), io.StringIO()
    with _environment(env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(["heartrisk", *args], code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """``env`` over ``os.environ`` for the block, Prefect's settings read from it again (Prefect reads the
    environment once, when it is imported). The whole environment is restored afterwards, not only the
    keys of ``env``: the command writes some itself (``PREFECT_API_URL`` when it finds a local server)."""
    from prefect.context import SettingsContext, get_settings_context
    from prefect.settings import Settings

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        with SettingsContext(profile=get_settings_context().profile, settings=Settings()):
            yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def last_json(done: subprocess.CompletedProcess) -> dict[str, Any]:
    """The command's result: the JSON object on its last stdout line."""
    assert done.stdout.strip(), done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
