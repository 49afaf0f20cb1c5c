"""The command line: options checked before anything starts, bad input exits 2 with the reason."""

from __future__ import annotations

import json
from pathlib import Path

from heartrisk.cli import main
from heartrisk.predlog import open_log
from tests.support.aged import aged, mailed, served
from tests.support.paths import HEART
from tests.support.servers import free_port


def test_a_username_needs_a_password_and_nothing_is_saved(monkeypatch, capsys) -> None:
    monkeypatch.delenv("HEARTRISK_SMTP_PASSWORD", raising=False)
    args = ["create-email-block", "--server", "smtp.gmail.com", "--port", "465", "--security", "ssl"]
    assert main([*args, "--username", "me@gmail.com"]) == 2
    assert "HEARTRISK_SMTP_PASSWORD" in capsys.readouterr().err


def test_monitor_refuses_a_malformed_csv_naming_column_and_row(tmp_path: Path, capsys) -> None:
    lines = HEART.read_text().splitlines()
    header = lines[0].split(",")
    row = lines[3].split(",")
    row[header.index("chol")] = "lots"
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([*lines[:3], ",".join(row), *lines[4:40]]) + "\n")
    assert main(["monitor", "--current", str(bad), "--no-retrain"]) == 2
    assert "column 'chol', row 3 (line 4): value 'lots' is not a number" in capsys.readouterr().err


def test_train_refuses_bad_data_before_starting_anything(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(HEART.read_text().replace("\n63,1,3,145", "\n400,1,3,145", 1))
    assert main(["train", "--data", str(bad)]) == 2
    assert "column 'age', row 1 (line 2): value '400' is out of range" in capsys.readouterr().err


def test_train_without_a_signing_key_stops_before_starting_anything(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HEARTRISK_MODEL_SIGNING_KEY_FILE", str(tmp_path / "none.pem"))
    assert main(["train"]) == 2
    assert f"heartrisk train: no model signing key at {tmp_path / 'none.pem'}" in capsys.readouterr().err


def test_purge_prints_what_each_kind_deleted_as_its_last_line(log_target: str, tmp_path: Path, monkeypatch, capsys):
    log = open_log(log_target)
    served(log, 3, 200, "old")
    served(log, 4, 0, "new")
    log.close()
    aged(tmp_path / "state" / "reports" / "drift-1.html", 200)
    mailed(tmp_path / "state" / "mail", "an alert", 200)
    monkeypatch.setenv("HEARTRISK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("HEARTRISK_PREDICTIONS_DB", log_target)
    monkeypatch.setenv("HEARTRISK_PREDICTIONS_RETENTION_DAYS", "0")
    assert main(["predictions", "purge"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Retention is off") and json.loads(out[-1])["remaining"] == 7
    monkeypatch.delenv("HEARTRISK_PREDICTIONS_RETENTION_DAYS")
    assert main(["predictions", "purge", "--older-than", "365"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["remaining"] == 7
    assert main(["predictions", "purge"]) == 0  # the default period, 180 days
    out = capsys.readouterr().out.splitlines()
    assert json.loads(out[-1]) == {
        "deleted": 3, "remaining": 4, "older_than_days": 180, "snapshots": 0, "reports": 1, "mlflow_runs": 0,
        "mails": 1, "mlflow_runs_awaiting_gc": 0, "failed": {},
    }  # fmt: skip
    assert len(out) == 6  # one sentence per kind, then the JSON line


def test_purge_of_an_unreachable_log_exits_1_with_the_reason_after_the_other_kinds(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    url = f"postgresql://app:s3cret@127.0.0.1:{free_port()}/log"  # pragma: allowlist secret
    monkeypatch.setenv("HEARTRISK_PREDICTIONS_DB", url)
    monkeypatch.setenv("HEARTRISK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    aged(tmp_path / "state" / "reports" / "drift-1.html", 200)
    assert main(["predictions", "purge"]) == 1
    captured = capsys.readouterr()
    shown = json.loads(captured.out.splitlines()[-1])
    assert shown["deleted"] is None and shown["reports"] == 1 and "unreachable" in shown["failed"]["predictions"]
    assert "unreachable" in captured.err and "s3cret" not in captured.err + captured.out


def test_a_malformed_setting_exits_2_naming_the_variable(monkeypatch, capsys) -> None:
    monkeypatch.setenv("HEARTRISK_PREDICTIONS_RETENTION_DAYS", "six months")
    assert main(["predictions", "purge"]) == 2
    err = capsys.readouterr().err
    assert "HEARTRISK_PREDICTIONS_RETENTION_DAYS must be a number, not 'six months'" in err
    assert "Traceback" not in err
