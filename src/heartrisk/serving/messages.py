"""What the app says when it cannot answer: the same advice on the form and in the API's 503."""

from __future__ import annotations

import time

from heartrisk.serving.model_holder import HolderStatus

RETRY_AFTER_SECONDS = 5
# Said to anyone: the cause, not the database's address (that is in the app's log and in /readyz).
NOT_LOGGED = (
    "The prediction log cannot be written right now, so no prediction is given: every answer is kept for "
    "monitoring. Nothing was saved; please try again in a few seconds."
)
TRAIN_HINT = (
    "A model must be trained first: run `heartrisk train` (or the Prefect deployment "
    "`train-heart-attack-model`); the app picks up the new champion by itself, no restart needed."
)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def no_model_advice(status: HolderStatus) -> str:
    """Say that training is under way when it is (and roughly how long it takes); else how to start it."""
    training = status.training
    if training is None:
        return TRAIN_HINT
    usual = (
        "usually about a minute"
        if training.last_seconds is None
        else f"the last one took {_duration(training.last_seconds)}"
    )
    now = "A model is being trained right now" if training.state == "started" else "A training run is waiting to start"
    return (
        f"{now} ({training.kind} {training.run_name}, {training.state} "
        f"{_duration(max(0.0, time.time() - training.started))} ago; {usual}). The app answers as soon as it is "
        "promoted, with no restart."
    )
