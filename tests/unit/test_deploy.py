"""The scale-out stack's files, checked without Docker: the secrets file, who gets which credential in
docker-compose.scale.yaml, and what nginx retries."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support import proxy
from tests.support.compose import read_env_file as read
from tests.support.compose import scale_env, scale_model
from tests.support.paths import ROOT
from tests.support.servers import require

S3_HOLDERS = {"mlflow", "mlflow-setup", "s3"}


def test_the_secrets_file_is_private_complete_and_never_rewritten(tmp_path: Path) -> None:
    tool, path = scale_env(), tmp_path / ".env.scale"
    assert tool.main(["scale_env.py", str(path)]) == 0
    first = read(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(first) == set(tool.NAMES) | set(tool.SETTINGS)
    assert {name: first[name] for name in tool.SETTINGS} == {name: value for name, (value, _) in tool.SETTINGS.items()}
    random = {name: value for name, value in first.items() if name in tool.NAMES and name not in tool.FIXED}
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32,}", value) for value in random.values())
    assert len(set(random.values())) == len(random)

    tool.main(["scale_env.py", str(path)])
    assert read(path) == first  # reused as it is

    kept = {k: v for k, v in first.items() if k != "HEARTRISK_S3_SECRET_KEY"}
    path.write_text("".join(f"{k}={v}\n" for k, v in kept.items()))
    path.chmod(0o644)
    tool.main(["scale_env.py", str(path)])
    again = read(path)
    assert {k: again[k] for k in kept} == kept and again["HEARTRISK_S3_SECRET_KEY"] not in (
        "",
        first["HEARTRISK_S3_SECRET_KEY"],
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.fixture(scope="module")
def overlay(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, str]]:
    """The resolved compose model of both files with a fresh secrets file, and those secrets."""
    return scale_model(tmp_path_factory.mktemp("overlay"))


def holders(model: dict[str, Any], secret: str) -> set[str]:
    """The services whose environment contains this secret, alone or inside a URL or auth string."""
    return {
        name
        for name, service in model["services"].items()
        if any(secret in str(value) for value in (service.get("environment") or {}).values())
    }


def test_only_the_mlflow_side_holds_or_reaches_the_s3_store(overlay: tuple[dict[str, Any], dict[str, str]]) -> None:
    model, secrets = overlay
    assert holders(model, secrets["HEARTRISK_S3_SECRET_KEY"]) == S3_HOLDERS
    on_storage = {name for name, service in model["services"].items() if "storage" in (service.get("networks") or {})}
    assert on_storage == S3_HOLDERS | {"postgres", "backup"}  # the WAL archive and the backups, with their own key
    assert model["networks"]["storage"]["internal"] is True


def test_each_credential_goes_where_it_is_used(overlay: tuple[dict[str, Any], dict[str, str]]) -> None:
    model, secrets = overlay
    admin_users = {"mlflow-setup", "prefect", "worker", "bootstrap", "proxy"}  # not the app, not the MLflow servers
    assert holders(model, secrets["HEARTRISK_ADMIN_PASSWORD"]) == admin_users
    assert holders(model, secrets["HEARTRISK_APP_MLFLOW_PASSWORD"]) == {"app", "mlflow-setup"}
    assert holders(model, secrets["HEARTRISK_MLFLOW_SECRET_KEY"]) == {"mlflow"}
    assert holders(model, secrets["HEARTRISK_PREDICTIONS_DB_PASSWORD"]) == {"postgres", "app", "worker", "bootstrap"}
    assert holders(model, secrets["HEARTRISK_PREFECT_DB_PASSWORD"]) == {"postgres", "prefect"}
    assert holders(model, secrets["HEARTRISK_METRICS_DB_PASSWORD"]) == {"postgres", "postgres-exporter"}
    assert all("PREFECT_API_KEY" not in (s.get("environment") or {}) for s in model["services"].values())


def test_only_the_proxy_is_published_and_replicas_are_as_documented(
    overlay: tuple[dict[str, Any], dict[str, str]],
) -> None:
    services = overlay[0]["services"]
    assert {name for name, service in services.items() if service.get("ports")} == {"proxy"}
    assert {p["target"] for p in services["proxy"]["ports"]} == {8000, 8443, 5000, 4200, 8001, 9090, 9093}  # the UIs
    replicas = {name: (service.get("deploy") or {}).get("replicas", 1) for name, service in services.items()}
    assert {k: replicas[k] for k in ("app", "mlflow", "worker", "prefect", "postgres")} == {
        "app": 3, "mlflow": 2, "worker": 2, "prefect": 1, "postgres": 1,
    }  # fmt: skip


def test_every_service_is_locked_down_and_the_app_reaches_only_what_it_needs(
    overlay: tuple[dict[str, Any], dict[str, str]],
) -> None:
    """Read-only root, no capabilities, no privileges gained: in every service of both files (the overlay
    inherits the base file's). The replicas' one network holds the proxy, PostgreSQL and Prometheus."""
    model = overlay[0]
    services = model["services"]
    loose = {
        name: (s.get("read_only"), s.get("cap_drop"), s.get("security_opt"))
        for name, s in services.items()
        if not (
            s.get("read_only") is True
            and s.get("cap_drop") == ["ALL"]
            and "no-new-privileges:true" in s.get("security_opt", [])
        )
    }
    assert loose == {}
    assert list(services["app"]["networks"]) == ["serving"]
    on_serving = {name for name, s in services.items() if "serving" in (s.get("networks") or {})}
    assert on_serving == {"app", "proxy", "postgres", "prometheus"}
    assert model["networks"]["serving"]["internal"] is True


def test_every_service_runs_as_its_images_non_root_user(overlay: tuple[dict[str, Any], dict[str, str]]) -> None:
    """No compose file sets `user:`, so each service runs as its Dockerfile's USER: a numeric id, never root.
    The Kubernetes manifests run each image as that same user (tests/kubernetes)."""
    services = overlay[0]["services"]
    images = {s["image"]: s["build"]["dockerfile"] for s in services.values() if "build" in s}
    users = {image: re.findall(r"^USER (\S+)", (ROOT / name).read_text(), re.M)[-1] for image, name in images.items()}
    assert all(re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", user) for user in users.values()), users
    assert {s["image"] for s in services.values()} <= set(users)
    assert [name for name, s in services.items() if "user" in s] == []


def nginx_directives() -> str:
    """deploy/nginx.conf without its comments."""
    return "\n".join(line.split("#", 1)[0] for line in (ROOT / "deploy" / "nginx.conf").read_text().splitlines())


def test_nginx_retries_a_post_only_when_it_was_never_sent() -> None:
    conf = nginx_directives()
    assert re.findall(r"proxy_next_upstream\s+([^;]*);", conf) == ["error timeout"]
    assert "non_idempotent" not in conf
    assert re.search(r"proxy_connect_timeout\s+2s;", conf)


def test_nginx_refuses_what_the_app_would_refuse(tmp_path: Path) -> None:
    """The start script puts the app's HEARTRISK_MAX_REQUEST_BYTES into the config (a stand-in nginx shows it)."""
    done = proxy.render(tmp_path, {"HEARTRISK_MAX_REQUEST_BYTES": "1234"})
    assert done.returncode == 0, done.stderr
    assert "client_max_body_size 1234;" in done.stdout and "@MAX_REQUEST_BYTES@" not in done.stdout
    default = proxy.render(tmp_path).stdout
    from heartrisk.config import get_settings

    assert f"client_max_body_size {get_settings().app.max_request_bytes};" in default
    bad = proxy.render(tmp_path, {"HEARTRISK_MAX_REQUEST_BYTES": "5m"})
    assert bad.returncode == 2 and "must be a number of bytes" in bad.stderr


def test_the_start_script_renders_the_throttle_and_x_served_by_with_the_secrets_files_defaults(tmp_path: Path) -> None:
    """What `make scale-up` writes into .env.scale is what nginx gets when the file says nothing."""
    defaults = {name: value for name, (value, _) in scale_env().SETTINGS.items()}
    for conf in (proxy.render(tmp_path).stdout, proxy.render(tmp_path, defaults).stdout):
        assert f"rate={defaults['HEARTRISK_RATE_LIMIT']}r/s;" in conf
        assert f"burst={defaults['HEARTRISK_RATE_BURST']} nodelay;" in conf
        assert f"rate={defaults['HEARTRISK_BATCH_RATE_LIMIT']}r/m;" in conf
        assert f"zone=heartrisk_batches burst={defaults['HEARTRISK_BATCH_BURST']} nodelay;" in conf
        assert f'map "{defaults["HEARTRISK_PROXY_SERVED_BY"]}" $heartrisk_served_by' in conf
        assert "set $app http://app:8000;" in conf and "@" not in conf.replace("@too_large", "")
    mine = {"HEARTRISK_RATE_LIMIT": "7", "HEARTRISK_RATE_BURST": "0", "HEARTRISK_PROXY_SERVED_BY": "yes"}
    mine |= {"HEARTRISK_BATCH_RATE_LIMIT": "7", "HEARTRISK_BATCH_BURST": "2"}
    conf = proxy.render(tmp_path, {**mine, "HEARTRISK_PROXY_APP_UPSTREAM": "127.0.0.1:8123"}).stdout
    assert "rate=7r/s;" in conf and "burst=0 nodelay;" in conf and 'map "on" $heartrisk_served_by' in conf
    assert "rate=7r/m;" in conf and "zone=heartrisk_batches burst=2 nodelay;" in conf
    assert re.search(r"default 9;\s*\}", conf)  # Retry-After of a large request: 60 s / 7, rounded up
    assert "set $app http://127.0.0.1:8123;" in conf


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("HEARTRISK_RATE_LIMIT", "ten", "must be a number of requests a second"),
        ("HEARTRISK_RATE_LIMIT", "0", "must be 1 or more requests a second"),
        ("HEARTRISK_RATE_BURST", "-1", "must be a number of requests"),
        ("HEARTRISK_BATCH_RATE_LIMIT", "0", "must be 1 or more requests a minute"),
        ("HEARTRISK_BATCH_BURST", "1.5", "must be a number of requests"),
        ("HEARTRISK_PROXY_SERVED_BY", "maybe", "must be on or off"),
        ("HEARTRISK_PROXY_APP_UPSTREAM", "app", "must be host:port"),
        ("HEARTRISK_PROXY_APP_UPSTREAM", "app:80;evil", "must be host:port"),
        ("HEARTRISK_PROXY_APP_UPSTREAM", "a/b:80", "must be host:port"),
    ],
)
def test_the_start_script_refuses_a_bad_setting_and_names_it(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    done = proxy.render(tmp_path, {name: value})
    assert done.returncode == 2 and f"{name} {message}" in done.stderr and done.stdout == ""


def test_nginx_invents_no_request_id_for_the_app_and_never_throttles_healthz() -> None:
    """The client's X-Request-ID goes to the app as it came (the app makes the log's key); nginx's own id is only
    in its access log. /healthz and /v2/health/live have no limit_req; the app's other paths do, and a throttled
    request under /v2 gets JSON, as under /api."""
    conf = nginx_directives()
    assert not re.search(r"proxy_set_header\s+X-Request-ID", conf, re.IGNORECASE)
    assert "$request_id" in re.search(r"log_format heartrisk[^;]*;", conf).group(0)
    app = re.search(r"\n    server \{\s*listen 8443 ssl;.*?\n    \}\n", conf, re.S).group(0)
    locations = dict(re.findall(r"location ([^{]+?) \{(.*?)\n        \}", app, re.S))
    assert "limit_req " not in locations["= /healthz"] and "limit_req zone=heartrisk_app" in locations["/"]
    assert "limit_req " not in locations["= /v2/health/live"] and "proxy_pass $app;" in locations["= /v2/health/live"]
    assert set(re.findall(r"~\^(/\w+/) json;", conf)) == {"/api/", "/v2/"}


def test_the_evidently_ui_behind_nginx_asks_for_the_admins_login(tmp_path: Path) -> None:
    """The UI has no login of its own: nginx's port 8001 asks for the admin (the whole config on a loopback nginx
    with the start script's password file; no UI behind it, so a good login gets nginx's 502 where a bad one
    gets 401)."""
    password = "s3cret-" + os.urandom(6).hex()  # pragma: allowlist secret
    login = {"HEARTRISK_ADMIN_USER": "heartrisk-admin", "HEARTRISK_ADMIN_PASSWORD": password}
    missing = proxy.render(tmp_path, {"HEARTRISK_ADMIN_USER": ""})
    assert missing.returncode != 0 and "HEARTRISK_ADMIN_USER" in missing.stderr
    with proxy.loopback_proxy(tmp_path, env=login) as nginx:
        assert password not in (tmp_path / "nginx" / "htpasswd").read_text()
        url = nginx.url(8001, "/api/projects")
        assert requests.get(url, timeout=10, verify=nginx.ca).status_code == 401
        assert requests.get(url, auth=("heartrisk-admin", "wrong"), timeout=10, verify=nginx.ca).status_code == 401
        assert requests.get(url, auth=("heartrisk-admin", password), timeout=10, verify=nginx.ca).status_code == 502


@pytest.mark.parametrize("served_by", ["off", "on"])
def test_nginx_accepts_the_rendered_config(tmp_path: Path, served_by: str) -> None:
    """The config as the start script renders it, with X-Served-By either way (nginx -t: syntax, directives, maps)."""
    require(proxy.NGINX.is_file(), "nginx is not installed (Debian: apt-get install nginx-light)")
    done = proxy.render(tmp_path, {"HEARTRISK_PROXY_SERVED_BY": served_by})
    assert done.returncode == 0, done.stderr
    (tmp_path / "nginx.conf").write_text(done.stdout)
    checked = subprocess.run(
        [str(proxy.NGINX), "-t", "-e", "stderr", "-c", str(tmp_path / "nginx.conf")], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr


def test_the_stacks_postgresql_makes_checksummed_clusters_and_never_turns_durability_off() -> None:
    """What a power cut cannot take rests on these (docs/operations.md); tests/integration/test_deploy.py checks
    the running server, this also the compose file, which could pass the server other settings."""
    script = (ROOT / "deploy" / "postgres-start.sh").read_text()
    initdb = script.split('"$bin/initdb"', 1)[1].split(">/dev/null", 1)[0]  # the command, over its two lines
    assert "--data-checksums" in initdb
    files = ("deploy/postgres-start.sh", "Dockerfile.postgres", "docker-compose.scale.yaml")
    text = "\n".join((ROOT / name).read_text() for name in files)
    for setting in ("fsync", "synchronous_commit", "full_page_writes"):
        assert not re.search(rf"{setting}\s*[=:]\s*['\"]?(off|false|no|0|local|remote_write)", text, re.IGNORECASE)


def test_every_connection_that_leaves_a_container_is_tls_checked_against_the_stacks_ca(
    overlay: tuple[dict[str, Any], dict[str, str]],
) -> None:
    """Who gets which certificate file (compose secrets, never an environment value), and every client of
    PostgreSQL, MLflow through the proxy and the S3 store set to verify the server against the CA."""
    model = overlay[0]
    services = model["services"]
    mounted = {name: {s["source"] for s in service.get("secrets", [])} for name, service in services.items()}
    assert {name for name, found in mounted.items() if "tls-key" in found} == {"proxy", "postgres", "s3"}
    assert {source: Path(secret["file"]).name for source, secret in model["secrets"].items()} == {
        "tls-ca": "ca.pem", "tls-cert": "server.pem", "tls-key": "server-key.pem",
        "backup-s3-key": "backup-s3-key", "backup-s3-secret": "backup-s3-secret",  # pragma: allowlist secret
    }  # fmt: skip
    for name, service in services.items():
        env = {k: str(v) for k, v in (service.get("environment") or {}).items()}
        assert not any("BEGIN" in value for value in env.values()), name  # no PEM in an environment
        assert "sslmode=disable" not in str(service), name
        if any(value.startswith("postgresql://") or "+psycopg://" in value for value in env.values()):
            if "DATA_SOURCE_NAME" in env:  # the exporter (Go's lib/pq): the same parameters in its URL
                assert "sslmode=verify-full&sslrootcert=/run/secrets/tls-ca" in env["DATA_SOURCE_NAME"]
            elif name != "postgres":
                assert (env.get("PGSSLMODE"), env.get("PGSSLROOTCERT")) == ("verify-full", "/run/secrets/tls-ca"), name
            assert "tls-ca" in mounted[name] or name == "postgres", name
        if "+asyncpg://" in env.get("PREFECT_API_DATABASE_CONNECTION_URL", ""):
            prefix = "PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_TLS_"
            tls = {k.removeprefix(prefix): v for k, v in env.items() if k.startswith(prefix)}
            assert tls == {"ENABLED": "true", "CA_FILE": "/run/secrets/tls-ca", "CHECK_HOSTNAME": "true"}
        if "MLFLOW_TRACKING_URI" in env:
            assert env["MLFLOW_TRACKING_URI"] == "https://proxy:5000", name
            assert env["MLFLOW_TRACKING_SERVER_CERT_PATH"] == env["REQUESTS_CA_BUNDLE"] == "/run/secrets/tls-ca"
        if "MLFLOW_S3_ENDPOINT_URL" in env:
            assert (env["MLFLOW_S3_ENDPOINT_URL"], env["AWS_CA_BUNDLE"]) == ("https://s3:8333", "/run/secrets/tls-ca")
    s3 = services["s3"]["command"]
    assert {"-s3.cert.file=/run/secrets/tls-cert", "-s3.key.file=/run/secrets/tls-key"} <= set(s3)


def test_the_uis_own_https_origins_are_the_ones_prefect_and_mlflow_accept(
    overlay: tuple[dict[str, Any], dict[str, str]],
) -> None:
    """Behind nginx's TLS the browser's origin is https://127.0.0.1:<port>: Prefect's CORS origins (made from
    PREFECT_UI_API_URL) hold it, and MLflow accepts its Host and Origin while another site's Origin is refused
    (what tests/stack/security_check.py asks of the running stack)."""
    from mlflow.server.security_utils import is_allowed_host_header, should_block_cors_request

    from heartrisk.stack.processes import prefect_browser_guard

    services = overlay[0]["services"]
    prefect = services["prefect"]["environment"]
    assert prefect["PREFECT_UI_API_URL"] == "https://127.0.0.1:4200/api"
    origins = prefect_browser_guard(4200, prefect)["PREFECT_SERVER_CORS_ALLOWED_ORIGINS"].split(",")
    assert {"https://127.0.0.1:4200", "https://localhost:4200"} <= set(origins)

    hosts = services["mlflow"]["environment"]["HEARTRISK_MLFLOW_ALLOWED_HOSTS"].split(",")
    assert is_allowed_host_header(hosts, "127.0.0.1:5000")  # nginx passes the browser's Host on
    assert not should_block_cors_request("https://127.0.0.1:5000", "POST", None)
    assert should_block_cors_request("http://evil.example", "POST", None)
