"""A hyperopt history that starts with a trial already done (see :func:`heartrisk.model.defaults_done`)."""

from __future__ import annotations

from typing import Any

from hyperopt import JOB_STATE_DONE, Domain, Trials
from hyperopt.fmin import generate_trial


def finished_history(space: Any, point: dict[str, Any], result: dict[str, Any]) -> Trials:
    """A history holding one finished trial, ``point`` of ``space`` scored ``result``, for TPE to build on.

    hyperopt's public ``generate_trials_to_calculate`` leaves out the labels of the branches of ``space``
    that ``point`` does not take, and TPE then fails with a KeyError once it models the history (hyperopt
    issue #646). Its helper ``generate_trial`` makes the trial document; ``Domain`` (what ``fmin`` makes of
    the space) lists every label, given here as empty, as in the trials TPE makes itself.

    Checked on hyperopt 0.3.0. Can go when TPE builds on the trials of ``generate_trials_to_calculate``
    (hyperopt #646 fixed): those, marked done, are then this history.
    """
    doc = generate_trial(0, point)
    for label in Domain(lambda _: 0.0, space).params:
        doc["misc"]["idxs"].setdefault(label, [])
        doc["misc"]["vals"].setdefault(label, [])
    doc |= {"state": JOB_STATE_DONE, "result": result}
    history = Trials()
    history.insert_trial_docs([doc])
    history.refresh()
    return history
