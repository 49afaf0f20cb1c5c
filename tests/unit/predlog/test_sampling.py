"""The sampling key and threshold, alone and in both SQL dialects."""

from __future__ import annotations

import pyarrow as pa

from heartrisk.predlog import open_log
from heartrisk.predlog.sampling import KEY, SAMPLE_PRIME, sample_threshold, trim
from tests.unit.predlog.test_base import _numbered


def test_a_window_that_fits_draws_nothing_and_a_larger_one_a_margin_above_the_share() -> None:
    assert sample_threshold(5_000, 5_000) is None and sample_threshold(5_000, None) is None
    below = sample_threshold(5_000, 500)
    assert below is not None and 0.1 * SAMPLE_PRIME < below < 0.125 * SAMPLE_PRIME
    assert sample_threshold(501, 500) == SAMPLE_PRIME  # a window just over: every row drawn, then trimmed


def test_the_trim_keeps_the_smallest_keys_in_the_tables_order() -> None:
    table = pa.table({"age": [1, 2, 3, 4, 5], KEY: [50, 10, 40, 20, 30]})
    assert trim(table, 3).to_pydict() == {"age": [2, 4, 5], KEY: [10, 20, 30]}
    assert trim(table, 5) is table


def test_both_backends_draw_the_same_rows(postgres, tmp_path) -> None:
    """One sampling expression in both SQL dialects: the same ids and seed give the same sample."""
    samples = []
    for target in (str(tmp_path / "p.sqlite"), postgres.create_database("same_sample")):
        log = open_log(target)
        _numbered(log, 3_000, {"1": 3_000})
        samples.append(sorted(log.window(max_rows=300, seed=11).frame["age"]))
        log.close()
    assert len(samples[0]) == 300 and samples[0] == samples[1]
