"""Migrations: the table appears on first use, once, even when many processes start at the same moment."""

from __future__ import annotations

import threading

import numpy as np

from heartrisk.predlog import migrate, open_log
from heartrisk.schema import FEATURE_NAMES

STARTERS = 6


def test_many_workers_opening_a_fresh_log_at_once_create_one_table(log_target: str) -> None:
    """Each thread has a log object (and connections) of its own, as gunicorn workers and replicas do."""
    barrier = threading.Barrier(STARTERS)
    errors: list[BaseException] = []

    def start(n: int) -> None:
        log = open_log(log_target)
        try:
            barrier.wait(30)
            log.append(np.full((1, len(FEATURE_NAMES)), float(n)), [0.5], [1], model_version="1", request_id=f"w{n}")
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)
        finally:
            log.close()

    threads = [threading.Thread(target=start, args=(n,)) for n in range(STARTERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    log = open_log(log_target)
    assert sorted(log.read()["request_id"]) == [f"w{n}" for n in range(STARTERS)]
    log.close()


def test_upgrading_again_changes_nothing(log_target: str) -> None:
    log = open_log(log_target)
    log.append(np.ones((2, len(FEATURE_NAMES))), [0.5, 0.5], [1, 0], model_version="1", request_id="a")
    log.close()
    if log.backend == "sqlite":
        migrate.upgrade_sqlite(log.path)
    else:
        migrate.upgrade_postgres(log.url)
    again = open_log(log_target)
    assert again.count() == 2
    again.close()
