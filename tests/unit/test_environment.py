"""The environment policy: telemetry off and chatter down by default, an explicit choice wins; MLflow's model
loaders locked whatever the environment says; the images agree."""

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


def test_mlflows_model_loaders_are_locked_even_when_the_environment_says_otherwise() -> None:
    import os

    from heartrisk.environment import NO_PICKLE, forbid_unpickling

    environ = {"MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"}
    forbid_unpickling(environ)
    assert environ == NO_PICKLE == {"MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
    assert os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] == "false"  # importing heartrisk did it here


DOCKERFILES = tuple(sorted(path.name for path in PROJECT_ROOT.glob("Dockerfile.*")))  # every image


def _env_line(dockerfile: str, first: str) -> dict[str, str]:
    lines = (PROJECT_ROOT / dockerfile).read_text().splitlines()
    env = next(line for line in lines if line.startswith(f"ENV {first}="))
    return dict(pair.split("=") for pair in env.split()[1:])


def test_the_images_switch_off_the_same_telemetry_and_lock_the_same_loaders() -> None:
    from heartrisk.environment import NO_PICKLE, TELEMETRY_OFF

    for dockerfile in DOCKERFILES:
        assert _env_line(dockerfile, "DO_NOT_TRACK") == TELEMETRY_OFF, dockerfile
        assert _env_line(dockerfile, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION") == NO_PICKLE, dockerfile
