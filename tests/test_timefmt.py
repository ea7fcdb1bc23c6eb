"""The one time formatter (sonotag_core.timefmt): minutes and seconds, hours when they are
needed or asked for, rounding that carries across the minute."""

from __future__ import annotations

import pytest

from sonotag_core.timefmt import clock


@pytest.mark.parametrize(
    ("seconds", "decimals", "text"),
    [
        (0, 2, "0:00.00"),
        (7.5, 2, "0:07.50"),
        (75.5, 2, "1:15.50"),
        (599.999, 2, "10:00.00"),  # rounds up across the minute
        (3725, 2, "1:02:05.00"),
        (3725, 0, "1:02:05"),
        (-3, 1, "0:00.0"),
    ],
)
def test_clock_reads_as_minutes_and_hours(seconds, decimals, text):
    assert clock(seconds, decimals) == text


def test_clock_with_hours_lines_up():
    assert clock(75.5, hours=True) == "0:01:15.50"
