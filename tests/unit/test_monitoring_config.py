"""The operators' side of the compose layouts, checked without Docker: Alertmanager's configuration as
deploy/monitoring-start.sh renders it (amtool, Debian's prometheus-alertmanager)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from tests.support.paths import ROOT
from tests.support.servers import require

START = ROOT / "deploy" / "monitoring-start.sh"


def render_alertmanager(tmp_path: Path, **env: str) -> Path:
    """Run the start script with a stand-in for Alertmanager that only says where its config is."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "prometheus-alertmanager").write_text(
        '#!/bin/sh\nfor a; do case "$a" in --config.file=*) echo "${a#*=}";; esac; done\n'
    )
    (fake / "prometheus-alertmanager").chmod(0o755)
    base = {
        "PATH": f"{fake}:/usr/bin:/bin",
        "HEARTRISK_ALERTMANAGER_TEMPLATE": str(ROOT / "deploy" / "alertmanager" / "alertmanager.yml"),
    }
    done = subprocess.run(
        ["sh", str(START), "alertmanager"], env=base | env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


def test_alertmanager_mails_the_drift_alerts_recipients_through_their_relay(tmp_path: Path) -> None:
    require(shutil.which("amtool") is not None, "amtool is missing (apt-get install prometheus-alertmanager)")
    rendered = render_alertmanager(
        tmp_path,
        HEARTRISK_EMAIL_TO="ops@example.org, oncall@example.org",
        HEARTRISK_EMAIL_FROM="heartrisk@example.org",
        HEARTRISK_ALERT_SMTP_SERVER="smtp.example.org:587",
        HEARTRISK_ALERT_SMTP_REQUIRE_TLS="true",
        HEARTRISK_ALERT_SMTP_USER="alerts|&/user",
        HEARTRISK_ALERT_SMTP_PASSWORD_FILE="/run/secrets/smtp",  # noqa: S106 (a file name)
    )
    config = yaml.safe_load(rendered.read_text())
    assert {
        k: config["global"][k] for k in ("smtp_smarthost", "smtp_from", "smtp_require_tls", "smtp_auth_username")
    } == {
        "smtp_smarthost": "smtp.example.org:587",
        "smtp_from": "heartrisk@example.org",
        "smtp_require_tls": True,
        "smtp_auth_username": "alerts|&/user",
    }
    email = config["receivers"][0]["email_configs"][0]
    assert email["to"] == "ops@example.org, oncall@example.org" and email["send_resolved"] is True
    checked = subprocess.run(["amtool", "check-config", str(rendered)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_without_a_login_alertmanager_sends_to_the_stacks_mail_sink(tmp_path: Path) -> None:
    config = yaml.safe_load(render_alertmanager(tmp_path).read_text())
    assert config["global"]["smtp_smarthost"] == "mail:1025"
    assert config["global"]["smtp_require_tls"] is False
    assert not {"smtp_auth_username", "smtp_auth_password_file"} & config["global"].keys()
    assert config["route"]["group_wait"] == "10s"  # a first e-mail within seconds of the alert
