"""The command line: options checked before anything starts, bad input exits 2 with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from heartrisk.cli import build_parser, main
from tests.support.paths import HEART


def test_a_username_needs_a_password_and_nothing_is_saved(monkeypatch, capsys) -> None:
    monkeypatch.delenv("HEARTRISK_SMTP_PASSWORD", raising=False)
    args = ["create-email-block", "--server", "smtp.gmail.com", "--port", "465", "--security", "ssl"]
    assert main([*args, "--username", "me@gmail.com"]) == 2
    assert "HEARTRISK_SMTP_PASSWORD" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["monitor", "--threshold", "1.5"], "between 0 (excluded) and 1"),
        (["monitor", "--threshold", "0"], "between 0 (excluded) and 1"),
        (["train", "--trials", "0"], "must be at least 1"),
        (["train", "--folds", "1"], "must be at least 2"),
        (["train", "--repeats", "0"], "must be at least 1"),
        (["serve", "--port", "http"], "invalid int value"),
    ],
)
def test_bad_options_exit_2_with_the_reason(argv: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


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


def test_every_command_of_the_readme_exists() -> None:
    commands = set(build_parser()._subparsers._group_actions[0].choices)
    expected = {"train", "monitor", "create-email-block", "serve", "mlflow-server", "prefect-server", "worker"}
    assert expected | {"smtp-sink", "bootstrap"} <= commands
