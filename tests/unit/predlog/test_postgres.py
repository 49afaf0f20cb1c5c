"""The PostgreSQL backend on a real server: one pool per process, a request in one transaction, any password."""

from __future__ import annotations

import multiprocessing
import secrets
from collections.abc import Iterator

import numpy as np
import pytest

from heartrisk.predlog import open_log
from heartrisk.predlog import postgres as postgres_module
from heartrisk.predlog.postgres import PostgresLog
from heartrisk.schema import FEATURE_NAMES
from tests.support.postgres import Postgres, postgres_server
from tests.support.predlog import logged

ONE = np.ones((1, len(FEATURE_NAMES)))


@pytest.fixture
def log(postgres: Postgres, request: pytest.FixtureRequest) -> Iterator[PostgresLog]:
    opened = open_log(postgres.create_database(f"pg_{request.node.name[:40].lower()}"))
    assert isinstance(opened, PostgresLog)
    yield opened
    opened.close()


def test_a_batch_is_one_transaction_and_requests_reuse_one_connection(log: PostgresLog, postgres: Postgres) -> None:
    log.append(np.arange(13_000, dtype=float).reshape(1000, 13), [0.5] * 1000, [1] * 1000, model_version="1",
               request_id="batch")  # fmt: skip
    for n in range(50):
        log.append(ONE, [0.5], [1], model_version="1", request_id=f"single-{n}")
    database = log.url.rsplit("/", 1)[1]
    query = "SELECT count(DISTINCT xmin::text) FROM predictions WHERE request_id = 'batch'"
    assert postgres.sql(query, database) == [(1,)]  # every row of the batch was written by the same transaction
    ages = log.window().frame["age"]
    assert len(ages) == 1050 and {0.0, 13.0, 12_987.0} <= set(ages)  # the batch's first, second and last rows
    stats = log._connections().get_stats()
    assert stats["connections_num"] <= 4  # 51 requests, not one connection each (the pool may grow while busy)


def _append_in_child(log: PostgresLog) -> None:
    log.append(ONE, [0.5], [1], model_version="1", request_id="child")


def test_a_forked_worker_gets_a_pool_of_its_own(log: PostgresLog) -> None:
    """gunicorn forks after the app is built: the parent's pool (threads, sockets) must not be used there."""
    log.append(ONE, [0.5], [1], model_version="1", request_id="parent")
    child = multiprocessing.get_context("fork").Process(target=_append_in_child, args=(log,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    log.append(ONE, [0.5], [1], model_version="1", request_id="parent-again")  # the parent's pool still works
    assert list(logged(log)["request_id"]) == ["parent", "child", "parent-again"]


def test_a_password_that_needs_quoting_in_a_url_works_for_writes_and_reads(postgres: Postgres) -> None:
    password = secrets.token_hex(4) + "@:/ %20?#é"  # each of these means something in a URL
    postgres.sql(f"CREATE ROLE quoted LOGIN PASSWORD '{password}'")
    postgres.sql("CREATE DATABASE quoted_db OWNER quoted")
    log = open_log(postgres.url("quoted_db", user="quoted", password=password))
    log.append(np.full((2, len(FEATURE_NAMES)), 3.0), [0.5] * 2, [1] * 2, model_version="1", request_id="q")
    assert log.window().frame[list(FEATURE_NAMES)].to_numpy().tolist() == [[3.0] * len(FEATURE_NAMES)] * 2
    assert log.where == f"postgresql://quoted@127.0.0.1:{postgres.port}/quoted_db"
    log.close()


def test_time_is_a_timestamp_with_time_zone(log: PostgresLog, postgres: Postgres) -> None:
    log.append(ONE, [0.5], [1], model_version="1", request_id="a")
    database = log.url.rsplit("/", 1)[1]
    rows = postgres.sql("SELECT data_type FROM information_schema.columns WHERE column_name = 'ts'", database)
    assert rows == [("timestamp with time zone",)]


def test_after_a_restart_while_idle_the_next_write_finds_a_fresh_connection(monkeypatch) -> None:
    """A quiet app whose PostgreSQL restarted overnight: its pooled connection is stale, and the first
    write after the rest must not fail (the idle connection is checked and replaced, not used)."""
    with postgres_server() as server:
        log = open_log(server.create_database("restarted"))
        log.append(ONE, [0.5], [1], model_version="1", request_id="before")
        monkeypatch.setattr(postgres_module, "IDLE_CHECK_SECONDS", 0.0)  # any rest counts as long
        server.stop("fast")
        server.start()
        log.append(ONE, [0.5], [1], model_version="1", request_id="after")
        assert list(logged(log)["request_id"]) == ["before", "after"]
        log.close()


def test_a_busy_connection_goes_out_unchecked_and_comes_back_without_a_thread_hop(log: PostgresLog, monkeypatch):
    """Under load the empty query before each use would cost a round trip per request, and a return through
    the pool's worker threads (what its ``reset`` callback does) a thread hop: neither happens."""
    checked, tasks = [], []
    monkeypatch.setattr(postgres_module.ConnectionPool, "check_connection", lambda conn: checked.append(conn))
    pool = log._connections()
    monkeypatch.setattr(pool, "run_task", lambda task: tasks.append(type(task).__name__))
    for n in range(20):
        log.append(ONE, [0.5], [1], model_version="1", request_id=f"busy-{n}")
    assert len(checked) == 1  # the new connection, once
    assert "ReturnConnection" not in tasks
    monkeypatch.setattr(postgres_module, "IDLE_CHECK_SECONDS", 0.0)  # any rest counts as long
    log.append(ONE, [0.5], [1], model_version="1", request_id="after-a-rest")
    assert len(checked) == 2


def test_the_tests_clusters_have_data_checksums_as_the_stacks_has(postgres: Postgres) -> None:
    assert postgres.settings("data_checksums") == {"data_checksums": "on"}
