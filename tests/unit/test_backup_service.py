"""The backup service's schedule: which backup comes next, and when."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from heartrisk.backup_service import next_run
from heartrisk.config import get_settings


def test_a_full_backup_on_sundays_and_a_differential_the_other_days_by_default() -> None:
    backup = get_settings().backup
    saturday_evening = datetime(2026, 12, 5, 20, 0, tzinfo=UTC)
    assert next_run(backup, saturday_evening) == ("full", datetime(2026, 12, 6, 1, 30, tzinfo=UTC))
    assert next_run(backup, datetime(2026, 12, 6, 1, 30, tzinfo=UTC)) == (
        "diff",
        datetime(2026, 12, 7, 1, 30, tzinfo=UTC),
    )


def test_a_full_backup_wins_a_minute_both_schedules_name() -> None:
    both = replace(get_settings().backup, full_cron="0 * * * *", diff_cron="*/30 * * * *")
    assert next_run(both, datetime(2026, 12, 5, 9, 10, tzinfo=UTC)) == (
        "diff",
        datetime(2026, 12, 5, 9, 30, tzinfo=UTC),
    )
    assert next_run(both, datetime(2026, 12, 5, 9, 40, tzinfo=UTC)) == (
        "full",
        datetime(2026, 12, 5, 10, 0, tzinfo=UTC),
    )
