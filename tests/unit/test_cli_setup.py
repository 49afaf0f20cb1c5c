"""The set-up commands (heartrisk.cli_setup), run as a user runs them: what each makes, and its JSON line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from heartrisk.cli import main


def test_the_mlflow_setup_job_reports_its_database_and_accounts(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HEARTRISK_MLFLOW_AUTH_DB", f"sqlite:///{tmp_path / 'users.db'}")
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_USERNAME", "boss")
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", "a-long-admin-password")  # pragma: allowlist secret
    monkeypatch.delenv("HEARTRISK_MLFLOW_BACKEND_URI", raising=False)
    monkeypatch.delenv("HEARTRISK_MLFLOW_ARTIFACTS", raising=False)
    monkeypatch.delenv("HEARTRISK_MLFLOW_READER_USER", raising=False)
    assert main(["mlflow-db-upgrade", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert json.loads(out[-1]) == {
        "backend_store": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "upgraded": True,
        "users": {"boss": "created"},
    }
    assert "MLflow's users: boss created" in out


def test_model_keys_makes_the_pair_once_and_prints_where(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HEARTRISK_MODEL_SIGNING_KEY_FILE", str(tmp_path / "k" / "s.pem"))
    monkeypatch.setenv("HEARTRISK_MODEL_VERIFY_KEY_FILE", str(tmp_path / "k" / "v.pem"))
    assert main(["model-keys"]) == 0
    first = capsys.readouterr().out.splitlines()
    assert first[0].startswith(f"model signing key created: {tmp_path / 'k' / 's.pem'}")
    assert json.loads(first[-1]) == {
        "signing_key": str(tmp_path / "k" / "s.pem"),
        "verify_key": str(tmp_path / "k" / "v.pem"),
    }
    assert main(["model-keys"]) == 0
    assert capsys.readouterr().out.startswith("model signing key found:")


def test_tls_certs_makes_the_stacks_certificates_and_says_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("HEARTRISK_TLS_DIR", str(tmp_path / "tls"))
    for name in ("HEARTRISK_TLS_CERT_FILE", "HEARTRISK_TLS_KEY_FILE", "HEARTRISK_TLS_CA_FILE"):
        monkeypatch.delenv(name, raising=False)
    assert main(["tls-certs"]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert result["ca"] == str(tmp_path / "tls" / "ca.pem") and Path(result["cert"]).is_file()

    monkeypatch.setenv("HEARTRISK_TLS_CERT_FILE", str(tmp_path / "tls" / "server.pem"))
    monkeypatch.setenv("HEARTRISK_TLS_KEY_FILE", str(tmp_path / "nowhere.pem"))
    assert main(["tls-certs", "--dir", str(tmp_path / "other")]) == 2
    assert "nowhere.pem does not exist" in capsys.readouterr().err
