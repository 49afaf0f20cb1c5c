"""Warnings of HeartRisk's own modules, logged inside a Prefect run, in that run's log in the Prefect UI.

Prefect sends the records of its run loggers to its API; a module's own logger (``heartrisk.predlog`` warns
when the window copy cannot be used and the whole window is read instead) reaches only the process's
console, which an operator sees in the worker's output at best. Prefect's ``PREFECT_LOGGING_EXTRA_LOGGERS``
does the same for a whole process, but only where the variable was set before Prefect was imported, and it
warns about every record logged outside a run (``heartrisk predictions purge``, the app).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from prefect.logging.handlers import APILogHandler


@contextmanager
def in_run_log(name: str) -> Iterator[None]:
    """For this block, the records of the logger ``name`` (and its children) also go to the current run's log."""
    handler, logger = APILogHandler(), logging.getLogger(name)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
