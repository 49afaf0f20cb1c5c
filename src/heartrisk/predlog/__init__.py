"""The log of served predictions: what monitoring compares with the reference data, and what retention trims.

One interface (:mod:`~heartrisk.predlog.base`), two backends, chosen by the form of
``HEARTRISK_PREDICTIONS_DB`` (:func:`open_log`): a path is a SQLite file (the embedded default, one host),
a ``postgresql://`` URL a PostgreSQL database (app replicas on several hosts write to one log). The
table is created on first use by the migrations in :mod:`heartrisk.predlog.migrate`.
"""

from heartrisk.predlog.backends import open_log, purge_old
from heartrisk.predlog.base import (
    CLIENT_REQUEST_ID_MAX,
    COLUMNS,
    DAY_SECONDS,
    SERVED,
    LogUnavailable,
    PredictionLog,
    Purged,
    Rows,
    Window,
)

__all__ = [
    "CLIENT_REQUEST_ID_MAX",
    "COLUMNS",
    "DAY_SECONDS",
    "SERVED",
    "LogUnavailable",
    "PredictionLog",
    "Purged",
    "Rows",
    "Window",
    "open_log",
    "purge_old",
]
