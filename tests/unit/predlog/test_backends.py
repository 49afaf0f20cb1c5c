"""The backend chosen from the target alone, and the purge that the command and the daily flow share."""

from __future__ import annotations

import numpy as np
import pytest

from heartrisk.predlog import open_log, purge_old
from heartrisk.schema import FEATURE_NAMES


@pytest.mark.parametrize(
    ("target", "backend", "where"),
    [
        ("/var/lib/heartrisk/p.sqlite", "sqlite", "/var/lib/heartrisk/p.sqlite"),
        (
            "postgresql://app:s3cret@db.internal:5433/log",  # pragma: allowlist secret
            "postgresql",
            "postgresql://app@db.internal:5433/log",
        ),
        ("postgres://app:s3cret@db/log", "postgresql", "postgresql://app@db/log"),  # pragma: allowlist secret
        ("postgresql+psycopg://app:s3cret@db/log", "postgresql", "postgresql://app@db/log"),  # pragma: allowlist secret
    ],
)
def test_the_target_alone_picks_the_backend_and_no_password_is_shown(target: str, backend: str, where: str) -> None:
    log = open_log(target)  # opening connects to nothing: the app starts while its database is down
    assert (log.backend, log.where) == (backend, where)


def test_purge_old_opens_purges_and_says_what_it_kept(log_target: str) -> None:
    log = open_log(log_target)
    log.append(np.ones((3, len(FEATURE_NAMES))), [0.5] * 3, [1] * 3, model_version="1", request_id="r")
    log.close()
    kept = purge_old(log_target, 0)
    assert (kept.deleted, kept.remaining, kept.where) == (0, 3, log.where)
    recent = purge_old(log_target, 30)  # nothing that old
    assert (recent.deleted, recent.remaining, recent.where) == (0, 3, log.where)
