"""The one time formatter (sonotag_core.domain.timefmt): minutes and seconds, hours when they are
needed or asked for, rounding that carries across the minute."""

from __future__ import annotations

import pytest

from sonotag_core.domain.timefmt import clock, duration


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


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0, "0:00.0"),
        (7.5, "0:07.5"),
        (59.96, "1:00.0"),
        (723.14, "12:03.1"),
        (3723.4, "1:02:03.4"),
        (-1, "0:00.0"),
    ],
)
def test_a_moment_in_tenths(seconds, text):
    assert clock(seconds, 1) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (45, "45 s"),
        (59.6, "1 min"),
        (720, "12 min"),
        (3 * 3600, "3 h"),
        (3 * 3600 + 65, "3 h 01 min"),
    ],
)
def test_a_length_in_words(seconds, text):
    assert duration(seconds) == text
