"""Seeded uniform sampling of a monitoring window, drawn in the query so that no more rows leave the database.

One SQL expression on the row's id (:func:`sample_key`) gives the same rows on SQLite and PostgreSQL;
:func:`sample_threshold` says which keys a window of a given size draws; :func:`trim` cuts the small
surplus the draw asks for down to exactly ``max_rows``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

SAMPLE_PRIME = 2_147_483_647  # 2^31 - 1
SAMPLE_MULTIPLIER = 48_271
KEY = "sample_key"  # the key's column in a sampled window


def sample_key(seed: int) -> str:
    """A row's sampling key in [0, 2^31 - 1), as SQL on its id: one expression, the same rows, on both backends.

    A Lehmer step (48271 id + seed mod the prime 2^31 - 1) spreads consecutive ids over the range, and
    squaring mod that prime breaks the lattice a linear step leaves: alone, it would keep runs of
    thousands of consecutive ids together (requests that came together, a time block). Every product
    stays under 2^62, so both databases compute it in 64-bit integers (SQLite turns an overflow into a float).
    """
    spread = f"((id % {SAMPLE_PRIME}) * {SAMPLE_MULTIPLIER} + {int(seed) % SAMPLE_PRIME}) % {SAMPLE_PRIME}"
    return f"((({spread}) * ({spread})) % {SAMPLE_PRIME})"


def sample_threshold(rows: int, max_rows: int | None) -> int | None:
    """The key below which a row is drawn, or None when every row of the window fits.

    Keys are close to uniform over [0, 2^31 - 1), so a threshold at ``share`` of the range draws about
    ``share`` of the rows; the share asks for four standard deviations more than ``max_rows``, so the
    draw almost never falls short, and the surplus is trimmed off.
    """
    if max_rows is None or rows <= max_rows:
        return None
    share = min(1.0, (max_rows + 4 * max_rows**0.5 + 16) / rows)
    return math.ceil(share * SAMPLE_PRIME)


def trim(table: pa.Table, max_rows: int) -> pa.Table:
    """The ``max_rows`` rows with the smallest keys, in the table's order: ``ORDER BY key LIMIT max_rows``
    without a sort in the database."""
    if table.num_rows <= max_rows:
        return table
    return table.take(np.sort(np.argpartition(table[KEY].to_numpy(), max_rows)[:max_rows]))
