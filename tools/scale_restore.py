"""`make scale-restore [TIME=...]`: the scale-out stack back from its newest backup, or as it was at TIME, in fresh
volumes (docs/operations.md, Restore).

Usage: python3 tools/scale_restore.py [--time TIME] -- COMPOSE...
       (COMPOSE: the compose command with its env files and -f files, as the Makefile's $(SCALE))

1. If PostgreSQL still runs, its current WAL segment is archived first (`scale-backup flush`), so that a restore
   to the end of the archive holds every commit until now; a stack that is down already skips this.
2. The backup to start from: the newest complete set, or the newest that had ended by TIME (`scale-backup choose`).
3. `down --volumes`: every volume of the stack goes but the S3 store's, which is external (it holds the backups).
4. Into the fresh volumes, with the store up: pgBackRest's restore (the postgres image), the artifacts MLflow's
   bucket lacks (MLflow's identity), the volumes' files (the backup service's image).
5. `up --wait`: PostgreSQL replays the archived WAL to the end, or to TIME, and promotes; the rest starts as usual.

The last line on stdout is one JSON object: the label, the seconds of the restore (steps 3 and 4) and until the
stack served again (step 5 too). Standard library only, like tools/scale_env.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence

BACKUP = ("run", "--rm", "--no-deps", "-T", "backup", "heartrisk", "scale-backup")


def choose(compose: Sequence[str], target: str | None) -> list[str]:
    return [*compose, *BACKUP, "choose", *(["--time", target] if target else [])]


def restore_steps(compose: Sequence[str], label: str, target: str | None) -> list[list[str]]:
    """Steps 3 and 4: the volumes replaced, then filled from the set ``label`` (and the WAL up to ``target``)."""
    recovery = ["--type=time", f"--target={target}", "--target-action=promote"] if target else []
    return [
        [*compose, "down", "--volumes", "--remove-orphans"],
        [*compose, "up", "--detach", "--wait", "s3"],
        [*compose, "run", "--rm", "--no-deps", "-T", "postgres", "heartrisk-postgres-restore", f"--set={label}",
         *recovery],
        [*compose, "run", "--rm", "--no-deps", "-T", "mlflow-setup", "heartrisk", "scale-backup", "restore-objects",
         label],
        [*compose, *BACKUP, "restore-volumes", label],
    ]  # fmt: skip


def start(compose: Sequence[str]) -> list[str]:
    return [*compose, "up", "--detach", "--wait", "--wait-timeout", "900"]


def parse(argv: Sequence[str]) -> tuple[str | None, list[str]]:
    """(TIME or None, the compose command) from this script's arguments."""
    if "--" not in argv:
        raise SystemExit("usage: scale_restore.py [--time TIME] -- COMPOSE...")
    at = list(argv).index("--")
    options, compose = list(argv[:at]), list(argv[at + 1 :])
    target = None
    if options[:1] == ["--time"] and len(options) == 2:
        target = options[1].strip() or None
    elif options:
        raise SystemExit(f"unexpected arguments: {options}")
    if not compose:
        raise SystemExit("no compose command after --")
    return target, compose


def run(command: list[str], *, capture: bool = False) -> str:
    print("+ " + " ".join(command), file=sys.stderr, flush=True)
    done = subprocess.run(command, stdout=subprocess.PIPE if capture else sys.stderr, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"failed (exit {done.returncode}): {' '.join(command)}")
    return done.stdout or ""


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def main(argv: Sequence[str]) -> int:
    target, compose = parse(argv)
    running = subprocess.run([*compose, "ps", "--status", "running", "--quiet", "postgres"], capture_output=True,
                             text=True, check=False).stdout.strip()  # fmt: skip
    if running:
        flushed = subprocess.run([*compose, "exec", "-T", "backup", "heartrisk", "scale-backup", "flush"], check=False)
        if flushed.returncode != 0:
            print("warning: the current WAL segment could not be archived; restoring what the archive holds",
                  file=sys.stderr)  # fmt: skip
    run([*compose, "up", "--detach", "--wait", "s3"])
    label = last_json(run(choose(compose, target), capture=True))["label"]
    began = time.monotonic()
    for step in restore_steps(compose, label, target):
        run(step)
    restored = time.monotonic() - began
    run(start(compose))
    serving = time.monotonic() - began
    when = f" as it was at {target}" if target else " to the end of its archive"
    print(f"Restored from backup {label}{when} in {restored:.0f} s; the stack served again after {serving:.0f} s.",
          file=sys.stderr)  # fmt: skip
    print(
        json.dumps({"label": label, "target": target, "restore_s": round(restored, 1), "serving_s": round(serving, 1)})
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
