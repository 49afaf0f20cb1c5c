"""The PostgreSQL backend on a real server: one pool per process, a request in one transaction, any password."""

from __future__ import annotations

import multiprocessing
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import psycopg
import pytest

from heartrisk.predlog import open_log
from heartrisk.predlog import postgres as postgres_module
from heartrisk.predlog.postgres import GroupCommit, PostgresLog
from heartrisk.schema import FEATURE_NAMES
from tests.support.postgres import Postgres, postgres_server

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
    ages = log.features()["age"]
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
    assert list(log.read()["request_id"]) == ["parent", "child", "parent-again"]


def test_a_password_that_needs_quoting_in_a_url_works_for_writes_and_reads(postgres: Postgres) -> None:
    password = secrets.token_hex(4) + "@:/ %20?#é"  # each of these means something in a URL
    postgres.sql(f"CREATE ROLE quoted LOGIN PASSWORD '{password}'")
    postgres.sql("CREATE DATABASE quoted_db OWNER quoted")
    log = open_log(postgres.url("quoted_db", user="quoted", password=password))
    log.append(np.full((2, len(FEATURE_NAMES)), 3.0), [0.5] * 2, [1] * 2, model_version="1", request_id="q")
    assert log.features().to_numpy().tolist() == [[3.0] * len(FEATURE_NAMES)] * 2
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
        assert list(log.read()["request_id"]) == ["before", "after"]
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


def test_concurrent_requests_share_commits_and_each_returns_after_its_own_row_is_written() -> None:
    """Group commit: every row written exactly once, groups of several rows, and no request returns before
    the write that holds its row has finished."""
    written: list[int] = []
    sizes: list[int] = []
    returned_early: list[int] = []

    def write(rows: list[tuple]) -> None:
        time.sleep(0.002)  # a commit's round trip, during which more requests queue
        written.extend(row[0] for row in rows)
        sizes.append(len(rows))

    commits = GroupCommit(write)

    def request(n: int) -> None:
        commits.commit((n,))
        if n not in written:
            returned_early.append(n)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(request, range(400)))
    assert sorted(written) == list(range(400))
    assert not returned_early
    assert max(sizes) > 1 and len(sizes) < 400


def test_a_bad_row_fails_its_own_request_only_and_a_lost_connection_fails_the_whole_group() -> None:
    calls: list[list[str]] = []

    def write(rows: list[tuple]) -> None:
        calls.append([row[0] for row in rows])
        if rows[0][0] == "slow":
            time.sleep(0.3)  # the next three requests queue behind this commit and form one group
        if "bad" in calls[-1]:
            raise psycopg.DataError("invalid input syntax for type double precision")
        if "down" in calls[-1]:
            raise psycopg.OperationalError("server closed the connection unexpectedly")

    commits = GroupCommit(write)

    def request(value: str) -> str:
        try:
            commits.commit((value,))
        except psycopg.Error as exc:
            return type(exc).__name__
        return "committed"

    with ThreadPoolExecutor(4) as pool:
        slow = pool.submit(request, "slow")
        time.sleep(0.1)
        outcomes = dict(zip(["a", "bad", "b"], pool.map(request, ["a", "bad", "b"]), strict=True))
    assert slow.result() == "committed"
    assert outcomes == {"a": "committed", "bad": "DataError", "b": "committed"}
    assert sorted(calls[1]) == ["a", "b", "bad"]  # one group, failed for its data, then written row by row
    assert sorted(map(tuple, calls[2:])) == [("a",), ("b",), ("bad",)]
    commits.commit(("c",))  # nobody is left writing: the next request writes alone
    assert calls[-1] == ["c"]
    with ThreadPoolExecutor(3) as pool:
        slow = pool.submit(request, "slow")
        time.sleep(0.1)
        lost = list(pool.map(request, ["down", "d"]))
    assert lost == ["OperationalError", "OperationalError"]  # the connection failed: both 503, no retry
    assert sorted(calls[-1]) == ["d", "down"]
