"""The stack's programs: the command lines and environments they are started with."""

from __future__ import annotations

import dataclasses
import itertools
import os
from pathlib import Path

import pytest

from heartrisk.config import BIN, get_settings
from heartrisk.settings import Settings
from heartrisk.stack import processes


def with_mlflow(**fields: str) -> Settings:
    """The settings with some of the MLflow section's fields changed."""
    base = get_settings()
    return dataclasses.replace(base, mlflow=dataclasses.replace(base.mlflow, **fields))


class Exec(Exception):
    """Raised instead of replacing the test process."""


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], dict[str, str]]]:
    calls: list[tuple[list[str], dict[str, str]]] = []

    def fake_execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        calls.append((argv, env))
        raise Exec(path)

    monkeypatch.setattr(processes.os, "execve", fake_execve)
    return calls


def test_mlflow_server_is_sized_for_the_project(started: list, tmp_path: Path) -> None:
    settings = with_mlflow(allowed_hosts="mlflow:*")
    with pytest.raises(Exec):
        processes.mlflow_server(settings, host="127.0.0.1", port=5001, state_dir=str(tmp_path))
    argv, env = started[0]
    assert argv[:2] == [str(BIN / "mlflow"), "server"]
    option = {flag: value for flag, value in itertools.pairwise(argv) if flag.startswith("--")}
    assert option["--workers"] == "1" and option["--port"] == "5001"
    assert env["MLFLOW_BACKEND_STORE_URI"] == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert option["--allowed-hosts"] == "mlflow:*"
    assert option["--artifacts-destination"] == str(tmp_path / "artifacts") and (tmp_path / "artifacts").is_dir()
    assert "--serve-artifacts" in argv
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert option["--uvicorn-opts"] == "--no-access-log"  # HEARTRISK_LOG_LEVEL=debug keeps the access log
    with pytest.raises(Exec):
        processes.mlflow_server(
            dataclasses.replace(settings, log_level="debug"), host=None, port=None, state_dir=str(tmp_path)
        )
    assert "--uvicorn-opts" not in started[1][0]


def test_mlflow_server_on_postgresql_and_s3_keeps_the_password_off_the_command_line(
    started: list, tmp_path: Path
) -> None:
    backend = "postgresql+psycopg://mlflow:s3cret@db:5432/mlflow"  # pragma: allowlist secret
    settings = with_mlflow(backend_uri=backend, artifacts="s3://models/mlflow")
    with pytest.raises(Exec):
        processes.mlflow_server(settings, host=None, port=None, state_dir=str(tmp_path))
    argv, env = started[0]
    option = {flag: value for flag, value in itertools.pairwise(argv) if flag.startswith("--")}
    assert env["MLFLOW_BACKEND_STORE_URI"] == backend and "s3cret" not in " ".join(argv)
    assert option["--artifacts-destination"] == "s3://models/mlflow" and "--serve-artifacts" in argv
    assert not (tmp_path / "artifacts").exists() and not (tmp_path / "mlflow.db").exists()


def test_mlflow_server_with_a_users_database_asks_for_a_login(started: list, tmp_path: Path) -> None:
    users = "postgresql+psycopg://mlflow_auth:s3cret@db:5432/mlflow_auth"  # pragma: allowlist secret
    settings = with_mlflow(auth_db=users)
    with pytest.raises(Exec):
        processes.mlflow_server(settings, host=None, port=None, state_dir=str(tmp_path))
    argv, env = started[0]
    option = {flag: value for flag, value in itertools.pairwise(argv) if flag.startswith("--")}
    assert option["--app-name"] == "basic-auth" and "s3cret" not in " ".join(argv)
    assert users in Path(env["MLFLOW_AUTH_CONFIG_PATH"]).read_text()
    with pytest.raises(Exec):
        processes.mlflow_server(get_settings(), host=None, port=None, state_dir=str(tmp_path))
    assert "--app-name" not in started[1][0] and "MLFLOW_AUTH_CONFIG_PATH" not in started[1][1]


def test_the_database_upgrade_runs_mlflows_own_and_hides_the_password(monkeypatch, tmp_path: Path) -> None:
    from mlflow.db import upgrade

    upgraded: list[str] = []
    monkeypatch.setattr(upgrade, "callback", upgraded.append)
    backend = "postgresql://mlflow:s3cret@db:5432/mlflow"  # pragma: allowlist secret
    settings = with_mlflow(backend_uri=backend)
    assert processes.mlflow_db_upgrade(settings, state_dir=None) == "postgresql://mlflow:***@db:5432/mlflow"
    assert processes.mlflow_db_upgrade(get_settings(), state_dir=str(tmp_path)) == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert upgraded == [backend, f"sqlite:///{tmp_path / 'mlflow.db'}"]


def test_prefect_server_runs_one_process(started: list, tmp_path: Path) -> None:
    settings = dataclasses.replace(get_settings(), state_dir=tmp_path)
    with pytest.raises(Exec):
        processes.prefect_server(settings, host=None, port=None)
    argv, env = started[0]
    assert argv[1:6] == ["server", "start", "--no-background", "--workers", "1"]
    assert "PREFECT_API_URL" not in env or env["PREFECT_API_URL"] != settings.prefect.api_url
    assert env["PREFECT_HOME"] == str(tmp_path / "prefect")


def test_prefect_server_wants_csrf_tokens_and_its_own_uis_origin(started: list, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PREFECT_SERVER_CSRF_PROTECTION_ENABLED", raising=False)
    monkeypatch.delenv("PREFECT_SERVER_CORS_ALLOWED_ORIGINS", raising=False)
    monkeypatch.setenv("PREFECT_UI_API_URL", "http://127.0.0.1:51234/api")  # compose: published elsewhere
    with pytest.raises(Exec):
        processes.prefect_server(dataclasses.replace(get_settings(), state_dir=tmp_path), host=None, port=4300)
    _, env = started[0]
    assert env["PREFECT_SERVER_CSRF_PROTECTION_ENABLED"] == "true"
    assert env["PREFECT_SERVER_CORS_ALLOWED_ORIGINS"].split(",") == [
        "http://127.0.0.1:4300", "http://127.0.0.1:51234", "http://localhost:4300", "http://localhost:51234"
    ]  # fmt: skip
    remote = processes.prefect_browser_guard(4200, {"PREFECT_UI_API_URL": "https://prefect.example.org/api"})
    assert "https://prefect.example.org" in remote["PREFECT_SERVER_CORS_ALLOWED_ORIGINS"].split(",")
    chosen = {"PREFECT_SERVER_CSRF_PROTECTION_ENABLED": "false", "PREFECT_SERVER_CORS_ALLOWED_ORIGINS": "*"}
    assert processes.prefect_browser_guard(4200, chosen) == chosen  # what the user set wins


def test_prefect_server_takes_prefects_own_database_url(started: list, monkeypatch, tmp_path: Path) -> None:
    url = "postgresql+asyncpg://prefect:s3cret@db:5432/prefect"  # pragma: allowlist secret
    monkeypatch.setenv("PREFECT_API_DATABASE_CONNECTION_URL", url)
    with pytest.raises(Exec):
        processes.prefect_server(dataclasses.replace(get_settings(), state_dir=tmp_path), host=None, port=None)
    argv, env = started[0]
    assert env["PREFECT_API_DATABASE_CONNECTION_URL"] == url and "s3cret" not in " ".join(argv)


def test_the_smtp_sink_keeps_mail_in_a_maildir_it_creates(started: list, tmp_path: Path) -> None:
    with pytest.raises(Exec):
        processes.smtp_sink(get_settings().mail, host="127.0.0.1", port=2525, mail_dir=str(tmp_path / "mail"))
    argv, _ = started[0]
    assert argv[-3:] == ["-c", "aiosmtpd.handlers.Mailbox", str(tmp_path / "mail")] and "127.0.0.1:2525" in argv
    assert all((tmp_path / "mail" / part).is_dir() for part in ("tmp", "new", "cur"))


def test_the_worker_gets_what_flow_runs_need(tmp_path: Path) -> None:
    base = get_settings()
    settings = dataclasses.replace(
        base, project_dir=tmp_path, prefect=dataclasses.replace(base.prefect, work_pool="pool-x")
    )
    env = processes.worker_env(settings)
    assert env["HEARTRISK_PROJECT_DIR"] == str(tmp_path) and env["HEARTRISK_WORK_POOL"] == "pool-x"
    assert env["HEARTRISK_PURGE_CRON"] == settings.prefect.purge_cron  # prefect.yaml's schedule of the purge
    assert env["MLFLOW_TRACKING_URI"] == settings.mlflow.tracking_uri
    assert env["PREFECT_API_URL"] == settings.prefect.api_url


def test_the_worker_makes_the_model_key_pair_on_first_start_and_says_where(
    started: list, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """It trains (signs) and monitors (verifies): on a fresh ``make up`` or compose stack, it makes the pair."""
    monkeypatch.setattr(processes, "wait_for", lambda *args, **kwargs: None)
    keys = tmp_path / "state" / "keys"
    settings = with_mlflow(
        model_signing_key_file=keys / "model-signing.pem", model_verify_key_file=keys / "model-verify.pem"
    )
    with pytest.raises(Exec):
        processes.worker(settings, name="w", healthcheck=False)
    assert f"model signing key created: {keys / 'model-signing.pem'} (training only)" in capsys.readouterr().err
    assert sorted(p.name for p in keys.iterdir()) == ["model-signing.pem", "model-verify.pem"]
    with pytest.raises(Exec):
        processes.worker(settings, name="w", healthcheck=False)
    assert "model signing key found:" in capsys.readouterr().err


def test_a_kubernetes_worker_starts_jobs_from_the_repositorys_template_and_makes_no_keys(
    started: list, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Its flow runs are Jobs that mount the key pair from a Secret; its own root file system is read-only."""
    monkeypatch.setattr(processes, "wait_for", lambda *args, **kwargs: None)
    base = with_mlflow(model_signing_key_file=tmp_path / "signing.pem", model_verify_key_file=tmp_path / "verify.pem")
    prefect = dataclasses.replace(base.prefect, work_pool_type="kubernetes", base_job_template="/etc/t.json")
    with pytest.raises(Exec):
        processes.worker(dataclasses.replace(base, prefect=prefect), name="w", healthcheck=True)
    argv = started[0][0]
    assert (
        argv[argv.index("--type") + 1] == "kubernetes" and argv[argv.index("--base-job-template") + 1] == "/etc/t.json"
    )
    assert list(tmp_path.iterdir()) == []


def test_waiting_for_a_closed_port_ends_with_what_was_awaited() -> None:
    with pytest.raises(TimeoutError, match=r"MLflow did not answer at http://127.0.0.1:9/health within 1 s"):
        processes.wait_for("http://127.0.0.1:9/health", timeout=1, what="MLflow", log=print)


def test_the_evidently_ui_gets_its_project_and_a_secret_that_never_shows_on_the_command_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from evidently.ui.service import app as service
    from evidently.ui.workspace import Workspace

    served: list = []
    monkeypatch.setattr(service, "run", served.append)  # Evidently's uvicorn, in this process
    monkeypatch.setattr(processes.os, "execve", lambda *args: pytest.fail(f"no new program: {args}"))
    folder = tmp_path / "evidently"
    settings = dataclasses.replace(get_settings().evidently, workspace=str(folder), secret="")
    processes.evidently_ui(settings, host=None, port=8011, workspace=None)
    (config,) = served
    assert (config.service.host, config.service.port, config.storage.path) == ("127.0.0.1", 8011, str(folder))
    assert [p.name for p in Workspace(str(folder)).list_projects()] == ["HeartRisk monitoring"]  # before the UI starts
    token = config.security.token.get_secret_value()
    assert len(token) >= 32  # none configured: a random one, so no one writes through the API
    assert os.environ["DO_NOT_TRACK"] == "true"  # the UI's telemetry component is off while it is set at all
    chosen = "a-secret-from-the-environment"  # pragma: allowlist secret
    processes.evidently_ui(dataclasses.replace(settings, secret=chosen), host=None, port=None, workspace=None)
    assert served[1].security.token.get_secret_value() == chosen and served[1].service.port == settings.port
    with pytest.raises(ValueError, match="is a URL"):
        processes.evidently_ui(dataclasses.replace(settings, workspace="http://ui:8001"), host=None,
                               port=None, workspace=None)  # fmt: skip
