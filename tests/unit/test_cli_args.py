"""The command's options: every command of the README exists, a bad option exits 2 with the reason."""

from __future__ import annotations

import os

import pytest

from heartrisk.cli import HANDLERS, main
from heartrisk.cli_args import build_parser


def test_every_command_of_the_readme_exists() -> None:
    commands = set(build_parser()._subparsers._group_actions[0].choices)
    expected = {"train", "monitor", "create-email-block", "serve", "mlflow-server", "prefect-server", "worker"}
    assert expected | {"smtp-sink", "bootstrap", "mlflow-db-upgrade", "predictions"} <= commands


def test_every_subcommand_names_a_handler_the_command_has() -> None:
    parsers = build_parser()._subparsers._group_actions[0].choices
    named = {parser.get_default("handler") for parser in parsers.values()}
    named |= {
        action.get_default("handler")
        for action in parsers["predictions"]._subparsers._group_actions[0].choices.values()
    }
    assert named - {None} == set(HANDLERS)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["monitor", "--threshold", "1.5"], "between 0 (excluded) and 1"),
        (["monitor", "--threshold", "0"], "between 0 (excluded) and 1"),
        (["train", "--trials", "0"], "must be at least 1"),
        (["train", "--folds", "1"], "must be at least 2"),
        (["train", "--repeats", "0"], "must be at least 1"),
        (["serve", "--port", "http"], "invalid int value"),
        (["predictions", "purge", "--older-than", "0"], "must be more than 0 days"),
        (["predictions"], "required: action"),
    ],
)
def test_bad_options_exit_2_with_the_reason(argv: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)  # the options are checked before any handler runs
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_serve_takes_both_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    """``heartrisk serve`` hands its options to gunicorn's config file as the settings' variables."""
    from heartrisk.stack import processes

    started: list[tuple[str, str]] = []
    monkeypatch.setattr(
        processes,
        "serve",
        lambda: started.append((os.environ["HEARTRISK_APP_PORT"], os.environ["HEARTRISK_APP_INTERNAL_PORT"])),
    )
    monkeypatch.setenv("HEARTRISK_APP_PORT", "1")
    monkeypatch.setenv("HEARTRISK_APP_INTERNAL_PORT", "2")  # monkeypatch restores both afterwards
    assert main(["serve", "--port", "8100", "--internal-port", "8101"]) == 0
    assert started == [("8100", "8101")]
