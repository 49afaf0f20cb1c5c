"""The scale-out stack (docker-compose.scale.yaml) under load and faults. Run by tests/stack/run.sh scale
(`make scale-test`), once the images are built.

The stack (tests/support/scale_stack.py, shared with security_check.py) starts as `make scale-up` starts it,
with a fresh credentials file from tools/scale_env.py and fresh certificates (a local CA in the test's folder),
on free loopback ports, and is removed with its volumes at the end. Everything is reached over HTTPS, trusting
that CA and nothing else (requests through REQUESTS_CA_BUNDLE or ``verify``, the browser through an NSS
database). The TLS checks themselves are security_check.py's. Then, through the proxy as a user and an operator
would: the services and who may reach what; a load at concurrency 16, lasting until 15 s after the faults are
over, during which an app replica is killed and started again, a new champion is promoted and a Prefect worker
is killed while a training run waits in the pool; every acknowledged request is then found in PostgreSQL by its
id. Last, a batch with shifted age and cholesterol, the monitor over the PostgreSQL log, and its alert in the
mail service. The figures of the run are printed (docs/scaling.md keeps them).

The stack's environment differs from `make scale-up`'s in two settings of the proxy, both for the test's
own sake: HEARTRISK_PROXY_SERVED_BY=on, so that each answer names the replica that gave it (which the
spreading and the kill checks read), and a throttle raised far above its default (PROXY_THROTTLE), since
the load comes from one client address at concurrency 16, as no real client does; the security test
checks the default throttle.

Not named test_*.py on purpose: plain `pytest` (make test) does not collect it.
"""

from __future__ import annotations

import json
import mailbox
import os
import re
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests

from heartrisk.names import MODEL, MONITOR_DEPLOYMENT, MONITOR_FLOW, TRAIN_DEPLOYMENT, TRAIN_FLOW
from heartrisk.schema import BY_NAME, FEATURE_NAMES
from heartrisk.serving.flow_runs import csrf_headers
from tests.support import prometheus, scale_stack
from tests.support.browser import every_ui
from tests.support.docker import address, docker, environment, inspect
from tests.support.load import RECORD, Load, Logged, Sample, account, wait_for
from tests.support.paths import REFERENCE
from tests.support.scale_stack import Stack

AFTER_FAULTS = 15.0  # seconds the load goes on after the killed replica is healthy again
CONCURRENCY = 16
POLL_SECONDS = scale_stack.POLL_SECONDS  # the app's poll of the alias (why 15 s: tests/support/scale_stack.py)
CUT_OFF = "ChunkedEncodingError"  # requests' name for a response that ended before its body did
KILL_WINDOW = (-1.0, 10.0)  # seconds around the kill of an app replica in which a failed request is allowed
REPLICAS = {
    "app": 3,
    "mlflow": 2,
    "worker": 2,
    "prefect": 1,
    "postgres": 1,
    "s3": 1,
    "proxy": 1,
    "mail": 1,
    "evidently": 1,
    "prometheus": 1,
    "alertmanager": 1,
    "pushgateway": 1,
    "postgres-exporter": 1,
    "nginx-exporter": 1,
    "backup": 1,
}
ALERT_MAIL_WITHIN = 120  # seconds from the fault to the operators' e-mail (issue 35)
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
# The proxy's settings for this test (see the docstring): answers name their replica, and one address may send
# far more than the load does (about 300 requests a second here) before nginx answers 429.
PROXY_THROTTLE = scale_stack.PROXY_THROTTLE
INTERNAL_PORT = 8081  # the app's HEARTRISK_APP_INTERNAL_PORT in the image (not published: probed from inside)


def test_every_service_is_up_and_only_the_proxy_is_published(stack: Stack) -> None:
    listed = [json.loads(line) for line in stack.compose("ps", "--all", "--format", "json").stdout.splitlines()]
    running = Counter(c["Service"] for c in listed if c["State"] == "running")
    assert {service: running[service] for service in REPLICAS} == REPLICAS
    unhealthy = [c["Name"] for c in listed if c["State"] == "running" and c["Health"] not in ("healthy", "")]
    assert unhealthy == []
    setup = [c for c in listed if c["Service"] == "mlflow-setup"]
    assert [(c["State"], c["ExitCode"]) for c in setup] == [("exited", 0)]
    published = {c["Service"] for c in listed for p in (c["Publishers"] or []) if p.get("PublishedPort")}
    assert published == {"proxy"}


def test_mlflow_and_prefect_want_credentials_and_the_app_none(stack: Stack) -> None:
    mlflow, search = stack.url("mlflow"), "/api/2.0/mlflow/experiments/search?max_results=1"
    assert [requests.get(f"{mlflow}{path}", timeout=30).status_code for path in (search, "/")] == [401, 401]
    assert [requests.get(f"{mlflow}{path}", auth=stack.admin, timeout=30).status_code for path in (search, "/")] == [
        200,
        200,
    ]
    api = f"{stack.url('prefect')}/api"
    token = csrf_headers(api, 30, stack.admin)  # Prefect wants one on every POST (no web page can get it)
    assert requests.post(f"{api}/flows/filter", json={}, headers=token, timeout=30).status_code == 401
    assert requests.post(f"{api}/flows/filter", json={}, auth=stack.admin, timeout=30).status_code == 403
    assert requests.post(f"{api}/flows/filter", json={}, auth=stack.admin, headers=token, timeout=30).status_code == 200
    projects = f"{stack.url('evidently')}/api/projects"  # the Evidently UI: nginx asks for the admin
    assert requests.get(projects, timeout=30).status_code == 401
    assert requests.get(projects, auth=stack.admin, timeout=30).status_code == 200
    assert requests.get(f"{stack.url('app')}/", timeout=30).status_code == 200
    assert requests.post(f"{stack.url('app')}/api/v1/predict", json=RECORD, timeout=30).status_code == 200

    reader = ("heartrisk-app", stack.secrets["HEARTRISK_APP_MLFLOW_PASSWORD"])  # the app's own account reads...
    alias = f"{mlflow}/api/2.0/mlflow/registered-models/alias"
    champion = requests.get(alias, params={"name": MODEL, "alias": "champion"}, auth=reader, timeout=30)
    assert champion.status_code == 200
    version = champion.json()["model_version"]["version"]  # ...but cannot move the champion
    moved = requests.post(alias, json={"name": MODEL, "alias": "champion", "version": version}, auth=reader, timeout=30)
    assert moved.status_code == 403


def test_only_the_mlflow_servers_hold_s3_credentials_or_reach_the_store(stack: Stack) -> None:
    secret = stack.secrets["HEARTRISK_S3_SECRET_KEY"]
    for service in ("app", "worker", "bootstrap", "prefect", "proxy", "postgres", "mail"):
        for container in stack.containers(service):
            env = environment(container)
            assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & env.keys(), service
            assert secret not in env.values(), service
    assert all(environment(c)["AWS_SECRET_ACCESS_KEY"] == secret for c in stack.containers("mlflow"))
    probe = "import socket; socket.create_connection(('s3', 8333), timeout=5).close()"
    assert stack.compose("exec", "-T", "mlflow", "python3", "-c", probe).returncode == 0


def test_an_app_replica_reaches_only_the_proxy_postgresql_and_prometheus(stack: Stack) -> None:
    """Least reach: from a replica, the names of the store, Prefect, the Evidently UI and the mail relay do
    not even resolve; the proxy and PostgreSQL do."""
    names = ("s3", "prefect", "evidently", "mail", "worker", "pushgateway", "alertmanager", "proxy", "postgres")
    probe = (
        "import socket\n"
        f"for name in {names!r}:\n"
        "    try: socket.gethostbyname(name); print(name, 'resolves')\n"
        "    except socket.gaierror: print(name, 'unknown')\n"
    )
    done = stack.compose("exec", "-T", "app", "python3", "-c", probe)
    assert done.returncode == 0, done.stderr
    seen = dict(line.split() for line in done.stdout.splitlines())
    assert {name for name, what in seen.items() if what == "resolves"} == {"proxy", "postgres"}


def test_the_proxy_spreads_requests_over_every_replica_and_keeps_the_apps_body_limit(stack: Stack) -> None:
    app = stack.url("app")
    page = requests.post(f"{app}/", data={k: str(v) for k, v in RECORD.items()}, timeout=30)
    assert page.status_code == 200 and 'id="model-version"' in page.text
    with requests.Session() as session:
        seen = {last_hop(session.post(f"{app}/api/v1/predict", json=RECORD, timeout=30)) for _ in range(60)}
    assert seen == {address(c, "serving") for c in stack.containers("app")}
    too_big = b" " * (5 * 1024 * 1024 + 1)  # HEARTRISK_MAX_REQUEST_BYTES + 1: refused before any replica
    refused = requests.post(
        f"{app}/api/v1/predict", data=too_big, headers={"content-type": "application/json"}, timeout=60
    )
    assert refused.status_code == 413 and "larger than 5242880 bytes" in refused.json()["error"]
    assert "X-Served-By" not in refused.headers or refused.headers["X-Served-By"] == ""


def in_the_app(stack: Stack, path: str, container: str | None = None) -> str:
    """What the app's internal port answers at ``path``, asked from inside an app container (``container``, or
    the service's first; the port is on no network outside it): its body, or the probe fails with the error."""
    probe = (
        "import urllib.request\n"
        f"print(urllib.request.urlopen('http://127.0.0.1:{INTERNAL_PORT}{path}', timeout=10).read().decode())"
    )
    command = ("python3", "-c", probe)
    done = docker("exec", container, *command) if container else stack.compose("exec", "-T", "app", *command)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_strangers_get_a_short_readyz_and_no_metrics_while_the_internal_port_has_both(stack: Stack) -> None:
    app = stack.url("app")
    public = requests.get(f"{app}/readyz", timeout=30)
    assert (public.status_code, public.json()) == (200, {"ready": True})
    assert requests.get(f"{app}/metrics", timeout=30).status_code == 404
    details = json.loads(in_the_app(stack, "/readyz"))
    assert details["ready"] is True and details["prediction_log"]["backend"] == "postgresql"
    assert "heartrisk_http_requests_total" in in_the_app(stack, "/metrics")


def logged_in_postgres(stack: Stack, rows: list[list[str]] | None = None) -> Logged:
    """The app's keys and the clients' ids in the PostgreSQL log (``rows``: already read)."""
    if rows is None:
        rows = stack.sql("SELECT request_id, client_request_id FROM predictions", "predictions")
    return Logged({key for key, _ in rows}, {client for _, client in rows if client})


def last_hop(answer: requests.Response | Sample) -> str:
    """The replica (IP address) that answered: the last of X-Served-By when the proxy tried several."""
    served_by = answer.served_by if isinstance(answer, Sample) else answer.headers.get("X-Served-By", "")
    return served_by.rsplit(",", 1)[-1].strip().rsplit(":", 1)[0]


# --- under load: a killed replica, a new champion, a killed worker --------------------------------------


def promote_a_new_champion(stack: Stack) -> str:
    """Register the champion again as a new version, sign it with the stack's key (held by the workers) and
    move the alias to it, as an operator rolls a model out; the new version number is what the replicas
    must answer with. Unsigned, or with the copied signature of the old version, every replica refuses it."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from mlflow.tracking import MlflowClient

    from heartrisk import signing

    pem = docker("exec", stack.containers("worker")[0], "cat", "/state/keys/signing/model-signing.pem")
    assert pem.returncode == 0, pem.stderr
    key = load_pem_private_key(pem.stdout.encode(), password=None)
    user, password = stack.admin
    os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = user, password
    try:
        client = MlflowClient(tracking_uri=stack.url("mlflow"))
        champion = client.get_model_version_by_alias(MODEL, "champion")
        files = json.loads(champion.tags[signing.TAG])["files"]  # the copy has the same files
        copy = client.copy_model_version(f"models:/{MODEL}@champion", MODEL)
        signed = signing.sign(key, MODEL, str(copy.version), files)
        client.set_model_version_tag(MODEL, copy.version, signing.TAG, signed)
        client.set_registered_model_alias(MODEL, "champion", copy.version)
    finally:
        del os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]
    return str(copy.version)


def queue_run(stack: Stack, flow: str, deployment: str, *, delay: float = 0, parameters: dict | None = None) -> str:
    """A flow run of a deployment, waiting in the pool until ``delay`` seconds from now; its id."""
    found = stack.prefect("GET", f"/deployments/name/{flow}/{deployment}")
    when = (datetime.now(UTC) + timedelta(seconds=delay)).isoformat()
    state = {"type": "SCHEDULED", "state_details": {"scheduled_time": when}}
    run = stack.prefect(
        "POST", f"/deployments/{found['id']}/create_flow_run", json={"state": state, "parameters": parameters or {}}
    )
    return run["id"]


def wait_run(stack: Stack, run_id: str, *, timeout: float) -> tuple[str, float]:
    """The final state of a flow run and its duration in seconds."""
    wait_for(
        lambda: stack.prefect("GET", f"/flow_runs/{run_id}")["state_type"] in FINAL,
        timeout=timeout,
        what=f"flow run {run_id}",
        every=2,
    )
    run = stack.prefect("GET", f"/flow_runs/{run_id}")
    return run["state_type"], float(run.get("total_run_time") or 0)


def worker_of(stack: Stack, run_id: str) -> str:
    """The worker that took the run, from its own log line in the run's logs."""
    logs = stack.prefect("POST", "/logs/filter", json={"logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200})
    names = {m.group(1) for log in logs if (m := re.search(r"Worker '([^']+)' submitting flow run", log["message"]))}
    assert len(names) == 1, names
    return names.pop()


def wait_healthy(container: str, timeout: float) -> float:
    wait_for(
        lambda: inspect(container)["State"].get("Health", {}).get("Status") == "healthy",
        timeout=timeout,
        what=f"{container} healthy",
        every=1,
    )
    return time.time()


def faults(stack: Stack, load: Load) -> dict[str, Any]:
    """The three faults while the load runs, one after the other; what happened when."""
    load.wait_ok(1000, timeout=300)
    events: dict[str, Any] = {"version": promote_a_new_champion(stack), "promote": time.time()}
    time.sleep(2 * POLL_SECONDS + 2)  # every replica must have switched by now
    victim = stack.containers("app")[1]
    worker, survivor = stack.containers("worker")
    events |= {"survivor": f"worker-{inspect(survivor)['Config']['Hostname']}", "kill": time.time()}
    assert docker("kill", victim).returncode == 0
    events["connections"] = stack.sql(
        "SELECT usename, count(*) FROM pg_stat_activity WHERE usename IS NOT NULL GROUP BY 1 ORDER BY 1", "postgres"
    )
    time.sleep(5)
    assert docker("start", victim).returncode == 0
    events["start"] = time.time()
    events["run"] = queue_run(stack, TRAIN_FLOW, TRAIN_DEPLOYMENT, delay=20)  # waits in the pool 20 s...
    assert docker("kill", worker).returncode == 0  # ...while one of the two workers dies
    events["ready"] = wait_healthy(victim, timeout=300)
    events["victim"] = address(victim, "serving")
    time.sleep(max(0.0, events["ready"] + AFTER_FAULTS - time.time()))  # the restarted replica takes its share
    load.stop(timeout=120)
    events["run_state"], events["run_seconds"] = wait_run(stack, events["run"], timeout=900)
    events["run_worker"] = worker_of(stack, events["run"])
    assert docker("start", worker).returncode == 0  # leave the stack whole for what follows
    return events


def nginx_retries(stack: Stack) -> int:
    """Requests the proxy passed to a second replica (its access log lists each upstream it tried)."""
    lines = stack.compose("logs", "--no-log-prefix", "proxy").stdout.splitlines()
    return sum(1 for line in lines if re.search(r"upstream=\S+, \S+", line))


def app_warnings(stack: Stack, limit: int = 30) -> str:
    """The app replicas' warning and error lines (a 503 names its reason there), the last ``limit`` of them."""
    lines = stack.compose("logs", "--timestamps", "app").stdout.splitlines()
    return "\n".join([line for line in lines if "[WARNING]" in line or "[ERROR]" in line][-limit:])


def test_under_load_a_killed_replica_a_new_champion_and_a_killed_worker_lose_nothing(
    stack: Stack, capsys: pytest.CaptureFixture
) -> None:
    begun = time.time()
    with Load(stack.url("app"), concurrency=CONCURRENCY, verify=stack.ca) as load:
        events = faults(stack, load)
    samples = load.samples
    last = max(s.done for s in samples)
    assert last > events["ready"] + 5, "the load ended before the faults were over"

    # A new champion: two poll intervals after the promotion no old answer, and every replica gave the new one.
    switched = events["promote"] + 2 * POLL_SECONDS
    late = [s for s in samples if s.outcome == 200 and s.done > switched]
    stale = Counter(
        (last_hop(s), s.version, round(s.done - events["promote"])) for s in late if s.version != events["version"]
    )
    assert not stale, (
        f"old answers after {2 * POLL_SECONDS} s (replica, version, seconds after): {stale.most_common(10)}"
    )
    before_kill = {last_hop(s) for s in late if s.done < events["kill"]}
    assert len(before_kill) == REPLICAS["app"], before_kill

    # Failed requests only in the seconds around the kill, and only a request cut off there: the proxy's 502,
    # or a response whose body the killed replica never finished (nginx had passed its status line on: the
    # client saw no complete answer, so nothing was acknowledged). Never another status.
    failed = [s for s in samples if s.outcome != 200]
    outside = [
        (s.outcome, round(s.done - events["kill"], 1))
        for s in failed
        if not KILL_WINDOW[0] <= s.done - events["kill"] <= KILL_WINDOW[1]
    ]
    assert outside == [], f"{outside[:10]} ({len(outside)} in all); the app's own reasons:\n{app_warnings(stack)}"
    assert {s.outcome for s in failed} <= {502, CUT_OFF}

    # Every acknowledged request is a row, found by the key the app answered, and no request was written twice
    # (no POST replayed: a replay would be a second key with the same client id).
    logged = stack.sql("SELECT request_id, client_request_id FROM predictions", "predictions")
    figures = account(load, logged_in_postgres(stack, logged))
    assert figures["acknowledged_not_logged"] == 0
    ours = {s.rid for s in samples}
    twice = Counter(client for _, client in logged if client in ours)
    assert [client for client, count in twice.items() if count != 1] == []

    # The restarted replica serves again; the training run that waited in the pool ran on the worker that lived.
    back = [
        s.done for s in samples if s.outcome == 200 and last_hop(s) == events["victim"] and s.done > events["start"]
    ]
    assert back, "the restarted replica never answered"
    assert (events["run_state"], events["run_worker"]) == ("COMPLETED", events["survivor"])
    old = [
        s.done for s in samples if s.outcome == 200 and s.version != events["version"] and s.done > events["promote"]
    ]

    seconds = last - begun
    report = {
        "up_wait_first_champion_s": round(stack.up_seconds),
        "requests": len(samples),
        "seconds": round(seconds, 1),
        "throughput_rps": round(len(samples) / seconds, 1),
        "error_rate": f"{len(failed) / len(samples):.4%}",
        "failed": dict(Counter(str(s.outcome) for s in failed)),
        "failed_after_kill_s": [
            round(min(s.done for s in failed) - events["kill"], 1),
            round(max(s.done for s in failed) - events["kill"], 1),
        ]
        if failed
        else [],
        "acknowledged_not_logged": figures["acknowledged_not_logged"],
        "logged_not_acknowledged": figures["logged_not_acknowledged"],
        "retried_by_proxy": nginx_retries(stack),
        "restarted_replica_first_answer_s": round(min(back) - events["start"], 1),
        "restarted_replica_healthy_s": round(events["ready"] - events["start"], 1),
        "last_old_answer_after_promotion_s": round(max(old) - events["promote"], 1) if old else 0.0,
        "training_run": f"{events['run_state']} on {events['run_worker']} in {events['run_seconds']:.0f} s",
        "postgres_connections_at_kill": {user: int(n) for user, n in events["connections"]},
        **pace(samples, begun, events),
    }
    with capsys.disabled():
        print("\n[scale] " + "\n[scale] ".join(f"{k}: {v}" for k, v in report.items()), file=sys.stderr)
        stats = docker("stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}\t{{.CPUPerc}}").stdout
        print("[scale] memory and CPU by container:\n" + stats, file=sys.stderr)


def pace(samples: list[Sample], begun: float, events: dict[str, Any]) -> dict[str, Any]:
    """Latency, the longest time with no answer at all, and answers per 10 s (with when each fault came)."""
    latency = np.array([s.latency for s in samples]) * 1000
    done = np.sort([s.done for s in samples])
    marks = {name: round(events[name] - begun) for name in ("kill", "start", "ready", "promote")}
    return {
        "latency_ms_p50_p99_max": [round(float(np.percentile(latency, q))) for q in (50, 99, 100)],
        "longest_pause_s": round(float(np.diff(done).max()), 1),
        "answers_per_10s": np.bincount(((done - begun) // 10).astype(int)).tolist(),
        "events_at_s": marks,
    }


# --- the operators' side: Prometheus and the alert e-mails -----------------------------------------------


def mails(stack: Stack) -> list[mailbox.MaildirMessage]:
    """Every message in the mail service (the relay of the drift alerts and of Alertmanager)."""
    with tempfile.TemporaryDirectory() as tmp:
        copied = stack.compose("cp", "mail:/state/mail", f"{tmp}/mail")
        assert copied.returncode == 0, copied.stderr
        return list(mailbox.Maildir(f"{tmp}/mail", factory=None, create=False))


def test_prometheus_finds_a_new_replica_and_metrics_stay_inside(stack: Stack, capsys: pytest.CaptureFixture) -> None:
    """Every target is scraped; a fourth app replica is, within a minute, with no change of configuration;
    the public port answers /metrics with 404 and the Prometheus and Alertmanager UIs ask for the admin."""
    assert requests.get(f"{stack.url('app')}/metrics", timeout=30).status_code == 404
    for name in ("prometheus", "alertmanager"):
        assert requests.get(f"{stack.url(name)}/-/ready", timeout=30).status_code == 401
        assert requests.get(f"{stack.url(name)}/-/ready", auth=stack.admin, timeout=30).status_code == 200
    url, auth = stack.url("prometheus"), stack.admin
    jobs = {"heartrisk-app", "mlflow", "pushgateway", "nginx", "postgres", "alertmanager", "prometheus"}
    try:
        wait_for(lambda: prometheus.jobs_up(url, auth) >= jobs, timeout=60, what="every target up")
    except TimeoutError:
        pytest.fail(f"not every target is up: {prometheus.targets(url, auth)}")
    assert len(prometheus.query(url, 'up{job="heartrisk-app"} == 1', auth)) == REPLICAS["app"]
    assert len(prometheus.query(url, 'up{job="mlflow"} == 1', auth)) == REPLICAS["mlflow"]

    scaled = stack.compose(
        "up", "--detach", "--no-deps", "--no-recreate", "--scale", f"app={REPLICAS['app'] + 1}", "app"
    )
    assert scaled.returncode == 0, scaled.stderr
    started = time.monotonic()
    try:
        wait_for(
            lambda: len(prometheus.query(url, 'up{job="heartrisk-app"} == 1', auth)) == REPLICAS["app"] + 1,
            timeout=60,
            what="the fourth replica scraped",
            every=2,
        )
        with capsys.disabled():
            print(
                f"\n[scale] a fourth app replica scraped {time.monotonic() - started:.0f} s after it started",
                file=sys.stderr,
            )
    finally:
        back = stack.compose("up", "--detach", "--no-deps", "--no-recreate", "--scale", f"app={REPLICAS['app']}", "app")
        assert back.returncode == 0, back.stderr


def test_postgresql_stopped_under_load_mails_the_operators_and_then_the_all_clear(
    stack: Stack, capsys: pytest.CaptureFixture
) -> None:
    """The prediction log gone (PostgreSQL stopped) while people send requests: each is refused 503, none is
    lost, and the operators get HeartRiskLogUnavailable by e-mail within two minutes; once PostgreSQL is back,
    the resolved e-mail follows."""

    def alert_mail(status: str) -> list[str]:
        return [
            m["Subject"]
            for m in mails(stack)
            if "HeartRiskLogUnavailable" in (m["Subject"] or "") and status in m["Subject"]
        ]

    assert alert_mail("FIRING") == []
    with Load(stack.url("app"), concurrency=2, verify=stack.ca) as load, load.paced(0.2):
        load.wait_ok(20, timeout=120)
        stopped = time.monotonic()
        assert stack.compose("stop", "postgres", timeout=120).returncode == 0
        try:
            wait_for(lambda: bool(alert_mail("FIRING")), timeout=ALERT_MAIL_WITHIN, what="the alert e-mail", every=5)
            fired = time.monotonic() - stopped
        finally:
            assert stack.compose("start", "postgres", timeout=120).returncode == 0
        back = time.monotonic()
        wait_healthy(stack.containers("postgres")[0], timeout=120)
        load.wait_ok(20, timeout=180)
    refused = Counter(s.outcome for s in load.samples if s.outcome != 200)
    assert set(refused) <= {503}, refused  # refused with the reason, never a 500
    assert account(load, logged_in_postgres(stack))["acknowledged_not_logged"] == 0
    wait_for(lambda: bool(alert_mail("RESOLVED")), timeout=300, what="the resolved e-mail", every=5)
    with capsys.disabled():
        print(
            f"\n[scale] PostgreSQL stopped: alert e-mail after {fired:.0f} s, resolved e-mail "
            f"{time.monotonic() - back:.0f} s after it was back; {sum(refused.values())} requests refused 503",
            file=sys.stderr,
        )


# --- monitoring over the PostgreSQL log ----------------------------------------------------------------


def shifted_batch() -> list[dict[str, Any]]:
    """The reference population, 15 years older and with 80 mg/dl more cholesterol; the rest unchanged."""
    frame = pd.read_csv(REFERENCE)[list(FEATURE_NAMES)]
    frame["age"] = (frame["age"] + 15).clip(upper=BY_NAME["age"].maximum)
    frame["chol"] = (frame["chol"] + 80).clip(upper=BY_NAME["chol"].maximum)
    return [
        {k: int(v) if BY_NAME[k].dtype == "int" else float(v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def test_a_shifted_batch_makes_the_monitor_mail_an_alert_naming_age_and_chol(stack: Stack) -> None:
    # The log holds the load's rows (one record, over and over): retention empties it first, as the daily
    # purge would with a short period, so that the monitor's 7-day window holds exactly the batch.
    purged = stack.compose("exec", "-T", "worker", "heartrisk", "predictions", "purge", "--older-than", "0.00001")
    assert purged.returncode == 0 and '"remaining": 0' in purged.stdout, purged.stdout + purged.stderr
    batch = shifted_batch()
    answer = requests.post(f"{stack.url('app')}/api/v1/predict", json=batch, timeout=120)
    assert answer.status_code == 200 and len(answer.json()) == len(batch)

    run = queue_run(stack, MONITOR_FLOW, MONITOR_DEPLOYMENT, parameters={"threshold": 0.1, "retrain": False})
    assert wait_run(stack, run, timeout=600)[0] == "COMPLETED"

    with tempfile.TemporaryDirectory() as tmp:
        copied = stack.compose("cp", "mail:/state/mail", f"{tmp}/mail")
        assert copied.returncode == 0, copied.stderr
        alerts = [m for m in mailbox.Maildir(f"{tmp}/mail", create=False) if "drift detected" in (m["Subject"] or "")]
        assert len(alerts) == 1, [m["Subject"] for m in mailbox.Maildir(f"{tmp}/mail", create=False)]
        text = (
            next(part for part in alerts[0].walk() if part.get_content_type() == "text/plain")
            .get_payload(decode=True)
            .decode()
        )
    assert f"Current data: {len(batch)} rows" in text
    drifted = set(re.findall(r"^  - .*\((\w+)\): ", text, flags=re.MULTILINE))
    assert drifted == {"age", "chol"}
    board = re.search(r"Evidently UI\): (\S+)", text)  # the run's page opens, behind the admin's login
    assert board is not None and board.group(1).startswith(f"{stack.url('evidently')}/projects/"), text
    assert requests.get(board.group(1), timeout=30).status_code == 401
    assert requests.get(board.group(1), auth=stack.admin, timeout=30).status_code == 200


def test_training_and_monitoring_keep_their_files_in_the_bucket(stack: Stack) -> None:
    listing = (
        "import boto3, os\n"
        "s3 = boto3.client('s3', endpoint_url=os.environ['MLFLOW_S3_ENDPOINT_URL'])\n"
        "for page in s3.get_paginator('list_objects_v2').paginate(Bucket='heartrisk-mlflow'):\n"
        "    print('\\n'.join(item['Key'] for item in page.get('Contents', [])))\n"
    )
    done = stack.compose("exec", "-T", "mlflow", "python3", "-c", listing)  # as the MLflow server sees the store
    assert done.returncode == 0, done.stderr
    names = {key.rsplit("/", 1)[-1] for key in done.stdout.split()}
    assert {"MLmodel", "model.skops", "model_card.md", "promotion_decision.json"} <= names
    assert any(name.endswith(".html") for name in names)  # the drift report of the monitoring run


def test_every_ui_in_a_browser_with_its_login(stack: Stack, capsys: pytest.CaptureFixture) -> None:
    """Through nginx, in Debian's chromium: the form (no login), the MLflow model page and the Evidently
    dashboard (the admin's HTTP login), and a Quick run of training from the Prefect UI (its login page takes
    the auth string ``HEARTRISK_ADMIN_USER:HEARTRISK_ADMIN_PASSWORD`` from the credentials file)."""
    urls = {name: stack.url(name) for name in ("app", "mlflow", "prefect", "evidently", "prometheus")}
    with capsys.disabled():
        try:
            every_ui("scale", urls, RECORD, admin=stack.admin, ca=stack.ca)
        except AssertionError as exc:  # a 5xx behind a page: the servers' own account of it
            logs = stack.compose("logs", "--tail", "60", "prefect", "mlflow", "evidently").stdout
            raise AssertionError(f"{exc}\n--- the servers' last lines ---\n{logs[-12000:]}") from None
