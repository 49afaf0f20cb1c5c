"""The environment policy: telemetry off and chatter down by default, an explicit choice wins, the images agree."""

from __future__ import annotations

from heartrisk.config import PROJECT_ROOT


def test_telemetry_defaults_off_and_an_explicit_choice_wins() -> None:
    from heartrisk.environment import TELEMETRY_OFF, switch_telemetry_off

    environ: dict[str, str] = {"MLFLOW_DISABLE_TELEMETRY": "false"}
    switch_telemetry_off(environ)
    assert environ == {**TELEMETRY_OFF, "MLFLOW_DISABLE_TELEMETRY": "false"}
    allowed = {"HEARTRISK_ALLOW_TELEMETRY": "true"}
    switch_telemetry_off(allowed)
    assert allowed == {"HEARTRISK_ALLOW_TELEMETRY": "true"}


def test_the_images_switch_off_the_same_telemetry() -> None:
    from heartrisk.environment import TELEMETRY_OFF

    for dockerfile in (
        "Dockerfile.app",
        "Dockerfile.mlflow",
        "Dockerfile.prefect",
        "Dockerfile.postgres",
        "Dockerfile.proxy",
    ):
        lines = (PROJECT_ROOT / dockerfile).read_text().splitlines()
        env = next(line for line in lines if line.startswith("ENV DO_NOT_TRACK="))
        assert dict(pair.split("=") for pair in env.split()[1:]) == TELEMETRY_OFF, dockerfile
