"""The environment policy every HeartRisk process applies before the libraries load: their telemetry off,
their chatter down, and no model unpickled. ``heartrisk/__init__`` calls the three functions, so every entry
point does it; a telemetry or logging variable the user set is kept. Settings themselves live in
:mod:`heartrisk.config`.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

# HeartRisk handles health data and calls nobody: the telemetry of every library it runs is off unless
# the user says otherwise. DO_NOT_TRACK covers Prefect's client, Evidently (and its UI) and MLflow (which
# needs "true"); Prefect's server, MLflow and ONNX Runtime have their own switches. SeaweedFS takes a command-line flag
# (``-master.telemetry=false``) where the stack starts it. The Dockerfiles repeat this list (tested).
TELEMETRY_OFF = {
    "DO_NOT_TRACK": "true",
    "ITERATIVE_DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "ORT_DISABLE_TELEMETRY": "1",  # ONNX Runtime 1.32 sends OneDS events to Microsoft, Linux too (found by the test)
    # Prefect 3.9's default UI (V2) starts Amplitude's SDK in the browser, which fetches its settings from
    # amplitude.com on every load whatever the server's analytics setting says; the V1 UI sends nothing
    # (the browser tests abort and report any request that leaves the stack).
    "PREFECT_SERVER_UI_V2_ENABLED": "false",
}


def switch_telemetry_off(environ: MutableMapping[str, str] = os.environ) -> None:
    """Default every library's telemetry to off, before any of them is imported (``heartrisk/__init__``).

    A variable the user set is kept, so an explicit opposite choice wins; ``HEARTRISK_ALLOW_TELEMETRY=true``
    leaves all of them to the libraries' own defaults.
    """
    if environ.get("HEARTRISK_ALLOW_TELEMETRY", "").strip().lower() in ("1", "true", "yes", "on"):
        return
    for name, value in TELEMETRY_OFF.items():
        environ.setdefault(name, value)


# No process of ours deserialises a model through MLflow: the app and the monitor read a version only after
# its signature checks out, and build it with skops from the types our code names (heartrisk.registry).
# MLflow's loaders would trust the types the model file lists (skops) or unpickle it, so they stay locked
# in every process we start, the MLflow server included, whatever the environment says. The Dockerfiles
# repeat this too (tested).
NO_PICKLE = {"MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}


def forbid_unpickling(environ: MutableMapping[str, str] = os.environ) -> None:
    """Lock MLflow's model loaders (pickle, cloudpickle, and skops with the file's own trust list).

    Set, not defaulted: nothing of ours needs them, so a ``true`` left in a shell cannot open them. A
    program that must load a model with MLflow's own loader (a benchmark's peer server) is started with
    the variable set for it alone.
    """
    environ.update(NO_PICKLE)


# What the stack prints by default is what a person reads (starts, URLs, training progress and result,
# promotions, alerts, errors); HEARTRISK_LOG_LEVEL=debug brings back the rest (access logs, MLflow's run
# links after every trial, its INFO lines, deprecation warnings).
QUIET_LIBRARIES = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true", "MLFLOW_LOGGING_LEVEL": "WARNING"}


def quiet_libraries(environ: MutableMapping[str, str] = os.environ) -> None:
    """Default the libraries' chattiness down unless HEARTRISK_LOG_LEVEL is debug; user settings win."""
    if environ.get("HEARTRISK_LOG_LEVEL", "").strip().lower() == "debug":
        return
    for name, value in QUIET_LIBRARIES.items():
        environ.setdefault(name, value)
