"""Run ``pipenv sync`` and show progress: packages installed out of those locked, size, time.

pipenv prints nothing for minutes while it installs about 1.8 GB; a person should see that it works.
Standard library only: it runs before the project's environment exists.

    python tools/sync_venv.py python -m pipenv sync --dev
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
EVERY = 10.0


def locked_packages() -> int:
    lock = json.loads((ROOT / "Pipfile.lock").read_text())
    return len(set(lock.get("default", {})) | set(lock.get("develop", {})))


def installed() -> int:
    return sum(1 for _ in VENV.glob("lib/python*/site-packages/*.dist-info"))


def size_mb(folder: Path) -> float:
    total, stack = 0, [folder]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                try:
                    total += entry.stat(follow_symlinks=False).st_size
                except OSError:
                    continue  # pip renames and deletes files while we count; a progress line is an estimate
    return total / 1e6


def main(command: list[str]) -> int:
    wanted = locked_packages()
    before = installed()
    print(
        f"[venv] setting up .venv from Pipfile.lock: {wanted} packages, about 1.8 GB; "
        f"{'2 to 4 minutes the first time' if before < wanted // 2 else 'only what changed'}.",
        flush=True,
    )
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT)
    shown = None
    while process.poll() is None:
        time.sleep(0.5)
        elapsed = time.monotonic() - started
        if elapsed // EVERY != shown:
            shown = elapsed // EVERY
            count = installed()
            phase = "downloading" if count <= before else "installing"
            print(f"[venv] {count}/{wanted} packages, {size_mb(VENV):,.0f} MB, {elapsed:.0f} s ({phase})", flush=True)
    if process.returncode == 0:
        print(f"[venv] ready: {installed()} packages in {time.monotonic() - started:.0f} s", flush=True)
    else:
        print(f"[venv] pipenv sync failed (exit {process.returncode}); see the lines above", file=sys.stderr)
    return process.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
