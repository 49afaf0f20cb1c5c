"""A hyperopt history that starts with the defaults done, and the gap in hyperopt it fills.

Checked on hyperopt 0.3.0 (``generate_trial`` and ``Domain``): the first test fails when they no longer make
a history TPE can build on, the second when hyperopt issue #646 is fixed and the compat function can go.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hyperopt import JOB_STATE_DONE, STATUS_OK, Trials, fmin, tpe
from hyperopt.fmin import generate_trials_to_calculate

from heartrisk._compat.hyperopt import finished_history
from heartrisk.model import DEFAULT_POINT, SPACE

LABELS = {"kernel", "C_linear", "C_rbf", "gamma_rbf", "gamma_rbf_value"}
PAST_STARTUP = 25  # TPE draws its first 20 trials at random; past them it models the history


def tpe_error(trials: Trials) -> KeyError | None:
    """What TPE raises once it models ``trials``, if anything."""
    try:
        fmin(lambda params: params["C"], SPACE, tpe.suggest, PAST_STARTUP, trials=trials,
             rstate=np.random.default_rng(0), show_progressbar=False)  # fmt: skip
    except KeyError as error:
        return error
    return None


def test_the_history_holds_the_point_done_with_every_label_and_tpe_builds_on_it() -> None:
    result: dict[str, Any] = {"loss": -0.5, "status": STATUS_OK}
    history = finished_history(SPACE, DEFAULT_POINT, result)
    [trial] = history.trials
    assert trial["state"] == JOB_STATE_DONE and trial["result"] == result
    assert set(trial["misc"]["idxs"]) == LABELS
    assert trial["misc"]["vals"] == {"kernel": [1], "C_rbf": [1.0], "gamma_rbf": [0], "C_linear": [],
                                     "gamma_rbf_value": []}  # fmt: skip
    assert tpe_error(history) is None
    assert len(history.trials) == PAST_STARTUP


def test_hyperopts_own_trials_for_a_point_still_leave_out_the_branches_it_does_not_take() -> None:
    error = tpe_error(generate_trials_to_calculate([DEFAULT_POINT]))
    assert error is not None, (
        "TPE now builds on hyperopt's own trials for a point (issue #646 fixed since 0.3.0): "
        "heartrisk._compat.hyperopt.finished_history can go"
    )
    assert "C_linear" in str(error)
