"""``heartrisk scale-backup ACTION`` and ``heartrisk s3-server``: the scale-out stack's backups and its S3 store.

The actions run in the stack's containers (docs/operations.md, Backups): ``serve`` is the backup service;
``now`` takes one set (``make scale-backup``); ``flush`` has PostgreSQL archive its current WAL segment, so that
a restore to the end of the archive holds every commit until now; ``choose``, ``restore-objects`` and
``restore-volumes`` are the steps of ``make scale-restore`` (tools/scale_restore.py) besides pgBackRest's own
restore in the postgres image.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from heartrisk.cli_args import emit
from heartrisk.config import get_settings


def _target(text: str | None) -> datetime | None:
    """A restore's target time, ISO 8601 with its zone (PostgreSQL reads the same text)."""
    if not text:
        return None
    when = datetime.fromisoformat(text.replace(" ", "T", 1))
    if when.tzinfo is None:
        raise ValueError(f"give the time with its zone (e.g. {text}+00:00): PostgreSQL would read it in its own")
    return when


def cmd_scale_backup(args: argparse.Namespace) -> int:
    from heartrisk import backup_service, pgbackrest, scale_backup

    settings = get_settings()
    if not settings.backup.s3_endpoint:
        print(
            "heartrisk scale-backup: HEARTRISK_BACKUP_S3_ENDPOINT is not set (the scale-out stack sets it)",
            file=sys.stderr,
        )
        return 2
    try:
        if args.action in ("serve", "now", "flush", "choose"):
            pgbackrest.configure()
        if args.action == "serve":
            backup_service.serve(settings)
        elif args.action == "now":
            taken = backup_service.take_and_report(settings, args.type)
            emit(taken.to_json(), [])  # its line is in the log already
        elif args.action == "flush":
            pgbackrest.run("check")  # switches to a new WAL segment and waits until the last one is archived
            emit({"flushed": True}, ["PostgreSQL's current WAL segment is in the archive."])
        elif args.action == "choose":
            s3 = scale_backup.client(settings)
            complete = scale_backup.complete_sets(s3, settings.backup.bucket)
            chosen = pgbackrest.choose(pgbackrest.backups(), complete, _target(args.time))
            emit({"label": chosen.label, "stopped": chosen.stopped_at}, [f"Restore from {chosen.label}"])
        elif args.action == "restore-objects":
            count = scale_backup.restore_objects(settings, args.label)
            emit({"label": args.label, "objects_restored": count}, [f"{count} artifacts put back from {args.label}"])
        else:
            count = scale_backup.restore_volumes(settings, args.label)
            emit({"label": args.label, "volume_files": count}, [f"{count} volume files put back from {args.label}"])
    except (pgbackrest.PgBackRestError, ValueError) as exc:
        print(f"heartrisk scale-backup {args.action}: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_s3_server(args: argparse.Namespace) -> int:
    from heartrisk.scale_backup import mlflow_bucket
    from heartrisk.stack import s3_store

    settings = get_settings()
    s3_store.serve(args.weed, settings.backup.bucket, mlflow_bucket(settings))
