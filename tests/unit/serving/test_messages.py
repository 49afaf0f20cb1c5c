"""The advice the app gives before it has a model: the running training when there is one."""

from __future__ import annotations

import dataclasses
import time

from heartrisk.serving.messages import TRAIN_HINT, no_model_advice
from heartrisk.serving.model_holder import HolderStatus
from heartrisk.tracking import TrainingInProgress


def status(training: TrainingInProgress | None) -> HolderStatus:
    return HolderStatus(
        None, "no model 'M' with alias 'champion' in MLflow yet", True, time.time(), "http://m", training
    )


def test_with_nothing_training_the_advice_is_the_command() -> None:
    assert no_model_advice(status(None)) == TRAIN_HINT
    assert "heartrisk train" in TRAIN_HINT and "train-heart-attack-model" in TRAIN_HINT


def test_a_running_training_is_named_with_its_age_and_the_last_duration() -> None:
    advice = no_model_advice(status(TrainingInProgress("hyperopt-50-trials", time.time() - 40, 150.0)))
    assert "being trained right now (MLflow run hyperopt-50-trials, started 40 s ago" in advice
    assert "the last one took 2 min" in advice
    assert "heartrisk train" not in advice  # no advice to start what is already running


def test_the_first_training_has_no_last_duration() -> None:
    advice = no_model_advice(status(TrainingInProgress("hyperopt-50-trials", time.time() - 5, None)))
    assert "usually about a minute" in advice


def test_a_run_prefect_has_queued_is_named_as_such() -> None:
    queued = TrainingInProgress("calm-fox", time.time() - 5, None, kind="Prefect flow run", state="queued")
    advice = no_model_advice(status(queued))
    assert "waiting to start (Prefect flow run calm-fox, queued 5 s ago; usually about a minute)" in advice
    running = dataclasses.replace(queued, state="started")
    assert "being trained right now (Prefect flow run calm-fox, started 5 s ago" in no_model_advice(status(running))
    assert "heartrisk train" not in advice
